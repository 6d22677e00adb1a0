"""Codex rollout parser: real 0.169.0 and 0.136.0 fixtures, both shapes mixed, hostile input."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from typing import Any

import pytest

from runtimes import codex_parse
from runtimes.codex_parse import parse_codex_line
from runtimes.events import Event, EventKind
from tests.unit.cputime import SCALE, assert_linear
from tests.unit.parse_support import (
    CODEX_136,
    CODEX_169,
    EMPTY_OBJECTS,
    MALFORMED,
    all_events,
    assert_no_semantic_duplicates,
    assert_offset_independent,
    check_golden,
    golden_rows,
    ledger,
    mirrored,
    mutations,
    parse_lines,
    read_lines,
)


def line(kind: str, payload: Any, ordinal: int | None = None) -> bytes:
    record: dict[str, Any] = {"timestamp": "T", "type": kind, "payload": payload}
    if ordinal is not None:
        record["ordinal"] = ordinal
    return json.dumps(record).encode()


def parse(kind: str, payload: Any, ordinal: int | None = None, offset: int = 0) -> list[Event]:
    result = parse_codex_line(line(kind, payload, ordinal), offset, "r.jsonl")
    assert not result.bad
    return list(result.events)


def item(item: dict[str, Any], ordinal: int | None = 1) -> list[Event]:
    return parse("event_msg", {"type": "item_completed", "turn_id": "t1", "item": item}, ordinal)


def brief(events: list[Event]) -> list[tuple[str, str, str]]:
    return [(e.kind.value, e.id, e.text) for e in events]


# --- the real fixtures ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "path"), [("codex-0.169.0", CODEX_169), ("codex-0.136.0", CODEX_136)]
)
def test_fixture_matches_golden(name: str, path: Any) -> None:
    results = parse_lines(parse_codex_line, read_lines(path), "rollout.jsonl")
    assert not any(r.bad for r in results)
    check_golden(name, golden_rows(results))


def test_0_169_mirrors_each_thing_once() -> None:
    events = all_events(parse_lines(parse_codex_line, read_lines(CODEX_169), "r.jsonl"))
    # function_call + CommandExecution + function_call_output collapse to one call, one result.
    assert mirrored(events) == [
        ("user_prompt", "run the greeting command"),
        ("tool_call", "echo hello-from-tool"),
        ("tool_result", "hello-from-tool\n"),
        ("assistant_text", "Done: the tool printed hello-from-tool."),
    ]
    assert_no_semantic_duplicates(events)
    calls = [e for e in events if e.kind is EventKind.TOOL_CALL]
    assert len(calls) == 2 and {e.id for e in calls} == {"tool:call_f46713fc8925"}
    results = [e for e in events if e.kind is EventKind.TOOL_RESULT]
    assert len(results) == 2 and {(e.text, e.is_error, e.meta["exit_code"]) for e in results} == {
        ("hello-from-tool\n", False, 0)
    }
    signals = [(e.kind.value, e.tokens, e.context_window) for e in ledger(events) if not e.mirrored]
    assert signals == [
        ("turn_start", None, 258400),
        ("context_size", 23020, 258400),
        ("context_size", 23020, 258400),
        ("turn_end", None, None),
    ]


def test_0_136_mirrors_each_thing_once() -> None:
    events = all_events(parse_lines(parse_codex_line, read_lines(CODEX_136), "r.jsonl"))
    assert mirrored(events) == [
        ("user_prompt", "please run TOKEN=fx136a"),
        ("tool_call", "echo tool-fx136a"),
        ("tool_result", "tool-fx136a\n"),
        ("assistant_text", "Done fx136a."),
        ("user_prompt", "just say hi"),
        ("assistant_text", "Ack."),
    ]
    assert_no_semantic_duplicates(events)
    turns = [
        (e.kind.value, e.id) for e in events if e.kind in (EventKind.TURN_START, EventKind.TURN_END)
    ]
    assert turns == [
        ("turn_start", "turn:01a204a3-ebd5-7812-a477-74d03c5137d7:start"),
        ("turn_end", "turn:01a204a3-ebd5-7812-a477-74d03c5137d7:end"),
        ("turn_start", "turn:01a204a4-24a5-7101-8fb8-d865b881f798:start"),
        ("turn_end", "turn:01a204a4-24a5-7101-8fb8-d865b881f798:end"),
    ]
    assert all(e.timestamp for e in events)


@pytest.mark.parametrize("path", [CODEX_169, CODEX_136])
def test_fixture_ids_do_not_depend_on_where_tailing_starts(path: Any) -> None:
    assert_offset_independent(parse_codex_line, path)


def test_a_file_holding_both_shapes_mirrors_each_thing_once() -> None:
    """An old Codex's turn followed by a new Codex's turn, in one file."""
    old = [raw for _, raw in read_lines(CODEX_136)][:14]  # session_meta .. first task_complete
    new = [raw for _, raw in read_lines(CODEX_169)][1:]
    offset, events = 0, list[Event]()
    for raw in old + new:
        events += parse_codex_line(raw, offset, "mixed.jsonl").events
        offset += len(raw) + 1
    assert mirrored(events) == [
        ("user_prompt", "please run TOKEN=fx136a"),
        ("tool_call", "echo tool-fx136a"),
        ("tool_result", "tool-fx136a\n"),
        ("assistant_text", "Done fx136a."),
        ("user_prompt", "run the greeting command"),
        ("tool_call", "echo hello-from-tool"),
        ("tool_result", "hello-from-tool\n"),
        ("assistant_text", "Done: the tool printed hello-from-tool."),
    ]
    assert_no_semantic_duplicates(events)


def test_legacy_rollouts_ignore_the_duplicate_agent_message_item() -> None:
    """Legacy-mode Codex also keeps the AgentMessage item next to ``agent_message``."""
    legacy = parse("event_msg", {"type": "agent_message", "message": "Done."})
    duplicate = item(
        {"type": "AgentMessage", "id": "m1", "content": [{"type": "Text", "text": "Done."}]}, None
    )
    assert brief(legacy) == [("assistant_text", "r.jsonl:L0", "Done.")] and duplicate == []
    # ...and a paginated rollout mirrors only the items.
    assert parse("event_msg", {"type": "agent_message", "message": "Done."}, ordinal=3) == []
    assert parse("event_msg", {"type": "user_message", "message": "hi"}, ordinal=3) == []
    assert parse("event_msg", {"type": "agent_reasoning", "text": "hm"}, ordinal=3) == []


def test_compaction_is_reported_once() -> None:
    events = parse(
        "compacted", {"message": "summary of the work", "replacement_history": []}, offset=7
    )
    assert brief(events) == [("compaction", "compact:r.jsonl:L7", "Conversation compacted")]
    assert events[0].meta == {"summary": "summary of the work"}
    assert parse("event_msg", {"type": "context_compacted"}) == []
    assert item({"type": "ContextCompaction", "id": "cc1"}) == []


# --- event_msg ----------------------------------------------------------------------------


def test_items() -> None:
    user = item(
        {
            "type": "UserMessage",
            "id": "u1",
            "content": [{"type": "text", "text": "hi"}, {"type": "image", "url": "x"}],
        }
    )
    assert brief(user) == [("user_prompt", "user:u1", "hi\n[image]")]
    agent = item(
        {
            "type": "AgentMessage",
            "id": "m1",
            "phase": "final_answer",
            "content": [{"type": "Text", "text": "yo"}],
        }
    )
    assert brief(agent) == [("assistant_text", "msg:m1", "yo")] and agent[0].meta == {
        "phase": "final_answer"
    }
    reasoning = item(
        {"type": "Reasoning", "id": "r1", "summary_text": ["a", "b"], "raw_content": ["secret"]}
    )
    assert brief(reasoning) == [("thinking", "reasoning:r1", "a\n\nb")]
    assert item({"type": "Reasoning", "id": "r2", "summary_text": []}) == []
    assert item({"type": "Plan", "id": "p1", "text": "1. do"}) == []


def test_command_execution_item() -> None:
    events = item(
        {
            "type": "CommandExecution",
            "id": "call_9",
            "command": ["git", "commit", "-m", "two words"],
            "aggregated_output": "nothing to commit\n",
            "exit_code": 1,
        },
        ordinal=None,  # the call ids are shared, so legacy files may mirror it too
    )
    call, result = events
    assert (call.id, call.text, call.tool, call.call_id) == (
        "tool:call_9",
        "git commit -m 'two words'",
        "exec_command",
        "call_9",
    )
    assert (result.id, result.text, result.is_error, result.meta) == (
        "result:call_9",
        "nothing to commit\n",
        True,
        {"exit_code": 1},
    )


@pytest.mark.parametrize(
    "text",
    [
        "<environment_context>\n  <cwd>/x</cwd>\n</environment_context>",
        "<user_instructions>be nice</user_instructions>",
        "<turn_aborted>\nThe user interrupted.\n</turn_aborted>",
        "<user_shell_command>ls</user_shell_command>",
        "# AGENTS.md instructions for /srv\n\n<INSTRUCTIONS>...</INSTRUCTIONS>",
        "<something_new>injected later</something_new>",
    ],
)
def test_injected_text_is_never_a_prompt(text: str) -> None:
    assert parse("event_msg", {"type": "user_message", "message": text}) == []
    assert (
        item({"type": "UserMessage", "id": "u", "content": [{"type": "text", "text": text}]}) == []
    )


def test_legacy_prompt_kinds_and_real_markup() -> None:
    assert (
        parse("event_msg", {"type": "user_message", "message": "x", "kind": "environment_context"})
        == []
    )
    events = parse(
        "event_msg",
        {"type": "user_message", "message": "<b> is bold", "kind": "plain", "images": ["a"]},
    )
    assert brief(events) == [("user_prompt", "r.jsonl:L0", "<b> is bold")] and events[0].meta == {
        "images": 1
    }


def test_turns_and_context() -> None:
    assert brief(parse("event_msg", {"type": "task_started", "turn_id": "t9"})) == [
        ("turn_start", "turn:t9:start", "")
    ]
    aborted = parse("event_msg", {"type": "turn_aborted", "reason": "interrupted"}, offset=5)
    assert [(e.id, e.meta) for e in aborted] == [
        ("turn:r.jsonl:L5:end", {"aborted": True, "reason": "interrupted"})
    ]
    done = parse("event_msg", {"type": "turn_aborted", "turn_id": "t9", "reason": "interrupted"})
    assert done[0].id == "turn:t9:end"
    info = {"last_token_usage": {"total_tokens": 5}}
    ctx = parse("event_msg", {"type": "token_count", "info": info}, offset=9)
    assert [(e.id, e.tokens, e.context_window) for e in ctx] == [("ctx:r.jsonl:L9", 5, None)]
    assert parse("event_msg", {"type": "token_count", "info": None}) == []


def test_legacy_exec_and_patch_ends_share_ids_with_the_calls() -> None:
    end = parse(
        "event_msg",
        {
            "type": "exec_command_end",
            "call_id": "c1",
            "command": ["bash", "-lc", "make"],
            "stdout": "o",
            "stderr": "e",
            "exit_code": 2,
        },
    )
    assert [(e.id, e.text, e.is_error) for e in end] == [
        ("tool:c1", "make", False),
        ("result:c1", "oe", True),
    ]
    patch = parse(
        "event_msg",
        {
            "type": "patch_apply_end",
            "call_id": "c2",
            "stdout": "",
            "stderr": "bad hunk",
            "success": False,
        },
    )
    assert [(e.id, e.text, e.is_error) for e in patch] == [("result:c2", "bad hunk", True)]


def test_errors_are_shown() -> None:
    events = parse("event_msg", {"type": "error", "message": "stream disconnected"})
    assert [(e.kind, e.text, e.is_error) for e in events] == [
        (EventKind.ASSISTANT_TEXT, "stream disconnected", True)
    ]
    assert parse("event_msg", {"type": "stream_error", "message": "Reconnecting... 1/5"}) == []


# --- response_item ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["user", "assistant", "developer"])
def test_response_messages_are_never_mirrored(role: str) -> None:
    assert (
        parse(
            "response_item",
            {"type": "message", "role": role, "content": [{"type": "input_text", "text": "hi"}]},
        )
        == []
    )
    assert (
        parse(
            "response_item",
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "t"}]},
        )
        == []
    )


@pytest.mark.parametrize(
    ("name", "args", "text"),
    [
        ("exec_command", {"cmd": "ls -la"}, "ls -la"),
        ("shell", {"command": ["bash", "-lc", "cat a | wc -l"], "workdir": "/x"}, "cat a | wc -l"),
        ("shell", {"command": ["/usr/bin/zsh", "-c", "pwd"]}, "pwd"),
        ("update_plan", {"plan": []}, '{"plan": []}'),
    ],
)
def test_function_calls(name: str, args: dict[str, Any], text: str) -> None:
    events = parse(
        "response_item",
        {"type": "function_call", "name": name, "arguments": json.dumps(args), "call_id": "c1"},
    )
    assert [(e.kind, e.id, e.text, e.tool, e.tool_input, e.call_id) for e in events] == [
        (EventKind.TOOL_CALL, "tool:c1", text, name, args, "c1")
    ]


def test_function_call_with_broken_arguments() -> None:
    events = parse(
        "response_item",
        {"type": "function_call", "name": "f", "arguments": "{nope", "call_id": "c1"},
    )
    assert (events[0].text, events[0].tool_input) == ("{nope", {"arguments": "{nope"})


@pytest.mark.parametrize(
    ("output", "text", "is_error", "meta"),
    [
        (
            "Chunk ID: a\nWall time: 1 seconds\nProcess exited with code 0\nOutput:\nok\n",
            "ok\n",
            False,
            {"exit_code": 0},
        ),
        (
            "Wall time: 1 seconds\nProcess exited with code 127\nOutput:\nnot found",
            "not found",
            True,
            {"exit_code": 127},
        ),
        (
            "Chunk ID: a\nProcess running with session ID 42\nOutput:\npartial",
            "partial",
            False,
            {"running_session": 42},
        ),
        ("plain text\nOutput:\nmore", "plain text\nOutput:\nmore", False, {}),
        (
            '{"output": "x", "metadata": {"exit_code": 1, "duration_seconds": 0.1}}',
            "x",
            True,
            {"exit_code": 1},
        ),
        ('{"some": "json the tool printed"}', '{"some": "json the tool printed"}', False, {}),
        ({"content": "denied", "success": False}, "denied", True, {}),
        ([{"type": "input_text", "text": "a"}, {"type": "input_image"}], "a", False, {}),
        (None, "", False, {}),
    ],
)
def test_tool_outputs(output: Any, text: str, is_error: bool, meta: dict[str, Any]) -> None:
    for kind in ("function_call_output", "custom_tool_call_output"):
        events = parse("response_item", {"type": kind, "call_id": "c1", "output": output})
        assert [(e.id, e.text, e.is_error, e.meta, e.call_id) for e in events] == [
            ("result:c1", text, is_error, meta, "c1")
        ]


PATCH = """*** Begin Patch
*** Add File: docs/new.md
+hello
*** Update File: src/app.py
*** Move to: src/main.py
@@
-a
+b
*** Delete File: old.txt
*** Update File: src/app.py
*** End Patch"""


def test_apply_patch_lists_the_files() -> None:
    events = parse(
        "response_item",
        {"type": "custom_tool_call", "name": "apply_patch", "input": PATCH, "call_id": "c7"},
    )
    assert [(e.id, e.tool, e.text, e.meta) for e in events] == [
        (
            "tool:c7",
            "apply_patch",
            PATCH,
            {"files": ["docs/new.md", "src/app.py", "src/main.py", "old.txt"]},
        )
    ]
    old_style = parse(
        "response_item",
        {
            "type": "function_call",
            "name": "apply_patch",
            "arguments": json.dumps({"input": PATCH}),
            "call_id": "c8",
        },
    )
    assert old_style[0].meta == events[0].meta


# --- hostile input ------------------------------------------------------------------------


@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_lines_are_bad(raw: bytes) -> None:
    result = parse_codex_line(raw, 0, "r")
    assert result.bad and result.events == ()


@pytest.mark.parametrize("raw", EMPTY_OBJECTS)
def test_empty_objects_are_not_bad(raw: bytes) -> None:
    result = parse_codex_line(raw, 0, "r")
    assert not result.bad and result.events == ()


def test_line_endings_and_invalid_utf8() -> None:
    raw = json.dumps(
        {"type": "event_msg", "payload": {"type": "user_message", "message": "héllo"}},
        ensure_ascii=False,
    ).encode()
    plain = parse_codex_line(raw, 3, "r")
    assert parse_codex_line(raw + b"\r", 3, "r") == plain
    assert (
        parse_codex_line(raw.replace("é".encode(), b"\xe9"), 3, "r").events[0].text == "h\ufffdllo"
    )


TYPE_NAMES = (
    "event_msg", "response_item", "compacted", "item_completed", "user_message", "agent_message",
    "agent_reasoning", "exec_command_end", "patch_apply_end", "task_started", "task_complete",
    "turn_aborted", "token_count", "error", "function_call", "function_call_output",
    "custom_tool_call", "custom_tool_call_output", "local_shell_call", "UserMessage",
    "AgentMessage", "Reasoning", "CommandExecution",
)  # fmt: skip


@pytest.mark.parametrize("path", [CODEX_169, CODEX_136])
def test_every_field_broken_in_every_fixture_line(
    path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    count = 0
    with caplog.at_level(logging.ERROR):
        for _, raw in read_lines(path):
            obj = json.loads(raw)
            if obj.get("type") in ("session_meta", "turn_context", "world_state"):
                obj["payload"] = {"type": "x"}  # huge and ignored: just swap types around
            for mutated in mutations(obj, TYPE_NAMES, depth=5):
                assert not parse_codex_line(mutated, 0, "r").bad
                count += 1
    assert count > 1000
    assert not caplog.records, "the last-resort guard caught a parser bug"


def test_a_parser_bug_is_contained_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(command: object) -> str:
        raise RuntimeError("bug")

    monkeypatch.setattr(codex_parse, "_command_text", boom)
    raw = line("response_item", {"type": "local_shell_call", "call_id": "c", "action": {}})
    with caplog.at_level(logging.ERROR):
        assert parse_codex_line(raw, 12, "r.jsonl").bad
    assert "r.jsonl at byte 12" in caplog.text


@pytest.mark.parametrize("path", [CODEX_169, CODEX_136])
def test_random_truncation_and_byte_flips(path: Any, caplog: pytest.LogCaptureFixture) -> None:
    rnd = random.Random(20261122)
    with caplog.at_level(logging.ERROR):
        for _, raw in read_lines(path):
            for _ in range(10):
                assert parse_codex_line(raw[: rnd.randrange(len(raw))], 0, "r").bad
                flipped = bytearray(raw)
                flipped[rnd.randrange(len(raw))] = rnd.randrange(256)
                parse_codex_line(bytes(flipped), 0, "r")
    assert not caplog.records


def _events(raw: bytes) -> list[Event]:
    result = parse_codex_line(raw, 0, "r")
    assert not result.bad
    return list(result.events)


def _exit_output(n: int) -> bytes:
    output = "Chunk ID: a\nProcess exited with code 3\nOutput:\n" + "z" * n
    return line("response_item", {"type": "function_call_output", "call_id": "c", "output": output})


def _patch(n: int) -> bytes:
    patch = (
        "*** Begin Patch\n"
        + "*** Update File: f.py\n+x\n" * (n // 25)
        + "*** Add File: x"
        + " " * n
        + "y\n"
    )
    payload = {"type": "custom_tool_call", "name": "apply_patch", "input": patch, "call_id": "c"}
    return line("response_item", payload)


def _weird_exit(n: int) -> bytes:
    weird = (
        "Process exited with code "
        + "9" * n
        + "\nProcess running with session ID "
        + "1" * 5000
        + "\nOutput:\n"
    )
    return line("response_item", {"type": "function_call_output", "call_id": "c", "output": weird})


def _spaces_prompt(n: int) -> bytes:
    text = " " * n + "<x" * 1000
    item = {"type": "UserMessage", "id": "u", "content": [{"type": "text", "text": text}]}
    return line("event_msg", {"type": "item_completed", "item": item}, 1)


def _long_command(n: int) -> bytes:
    args = json.dumps({"cmd": "echo " + "a" * n})
    payload = {"type": "function_call", "name": "exec_command", "arguments": args, "call_id": "c"}
    return line("response_item", payload)


#: name -> line of size n (ten megabytes at n = 10_000_000).
HUGE: dict[str, Callable[[int], bytes]] = {
    "exit output": _exit_output,
    "patch": _patch,
    "weird exit": _weird_exit,
    "prompt of spaces": _spaces_prompt,
    "long command": _long_command,
}
MB10 = 10_000_000


def test_ten_megabyte_lines_parse_whole() -> None:
    events = _events(_exit_output(MB10))
    assert len(events[0].text) == MB10 and events[0].is_error
    assert _events(_patch(MB10))[0].meta["files"][0] == "f.py"
    assert _events(_weird_exit(MB10))[0].meta == {}
    assert len(_events(_spaces_prompt(MB10))) == 1
    assert len(_events(_long_command(MB10))[0].text) == MB10 + 5


@pytest.mark.parametrize("name", list(HUGE))
def test_huge_lines_parse_in_linear_time(name: str) -> None:
    assert_linear(_events, HUGE[name], MB10 // SCALE, what=name)
