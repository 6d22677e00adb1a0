"""Claude Code transcript parser: the real 2.1.328 fixture, every mapping rule, hostile input."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from typing import Any

import pytest

from runtimes.claude_parse import WRAPPER_TAGS, parse_claude_line
from runtimes.events import Event, EventKind
from tests.unit.cputime import SCALE, assert_linear
from tests.unit.parse_support import (
    CLAUDE_FIXTURE,
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

MSG = "msg_0123"


def parse(record: dict[str, Any], offset: int = 0) -> list[Event]:
    result = parse_claude_line(json.dumps(record).encode(), offset, "t.jsonl")
    assert not result.bad
    return list(result.events)


def kinds(events: list[Event]) -> list[str]:
    return [e.kind.value for e in events]


def assistant(
    *blocks: dict[str, Any], usage: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    message: dict[str, Any] = {"id": MSG, "role": "assistant", "content": list(blocks)}
    if usage is not None:
        message["usage"] = usage
    return {"type": "assistant", "uuid": "u-a", "timestamp": "T", "message": message, **extra}


def user(content: Any, **extra: Any) -> dict[str, Any]:
    return {
        "type": "user",
        "uuid": "u-1",
        "timestamp": "T",
        "message": {"role": "user", "content": content},
        **extra,
    }


# --- the real fixture ----------------------------------------------------------------------


def test_fixture_matches_golden() -> None:
    results = parse_lines(parse_claude_line, read_lines(CLAUDE_FIXTURE), "claude.jsonl")
    assert not any(r.bad for r in results)
    check_golden("claude-2.1.328", golden_rows(results))


def test_fixture_mirrors_the_conversation_once() -> None:
    events = all_events(parse_lines(parse_claude_line, read_lines(CLAUDE_FIXTURE), "c.jsonl"))
    assert mirrored(events) == [
        ("user_prompt", "run the greeting command"),
        ("assistant_text", "Let me run a command."),
        ("tool_call", "echo hello-from-tool"),
        ("tool_result", "hello-from-tool"),
        ("assistant_text", "Done: the tool printed hello-from-tool."),
        ("compaction", "Conversation compacted (manual, 520015 → 2878 tokens)"),
    ]
    assert_no_semantic_duplicates(events)
    signals = [(e.kind.value, e.tokens) for e in ledger(events) if not e.mirrored]
    assert signals == [
        ("turn_start", None),
        ("context_size", 520003),
        ("context_size", 520003),
        ("turn_end", None),
        ("context_size", 2878),
    ]
    assert all(e.timestamp for e in events)


def test_fixture_ids_do_not_depend_on_where_tailing_starts() -> None:
    assert_offset_independent(parse_claude_line, CLAUDE_FIXTURE)


def test_hook_prompt_id_is_carried() -> None:
    hook = json.loads(next(CLAUDE_FIXTURE.parent.glob("hooks/*-UserPromptSubmit.json")).read_text())
    events = all_events(parse_lines(parse_claude_line, read_lines(CLAUDE_FIXTURE), "c.jsonl"))
    prompt = next(e for e in events if e.kind is EventKind.USER_PROMPT)
    assert prompt.meta["prompt_id"] == hook["prompt_id"]


# --- assistant ----------------------------------------------------------------------------


def test_blocks_get_stable_content_ids() -> None:
    text = parse(assistant({"type": "text", "text": "hello"}))
    again = parse(assistant({"type": "text", "text": "hello"}), offset=999)
    other = parse(assistant({"type": "text", "text": "bye"}))
    assert text[0].id == again[0].id and text[0].id.startswith(f"{MSG}:text:")
    assert text[0].id != other[0].id


def test_one_line_with_many_blocks_and_each_kind() -> None:
    events = parse(
        assistant(
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "thinking", "thinking": "", "signature": "redacted"},
            {"type": "redacted_thinking", "data": "xx"},
            {"type": "text", "text": "   "},
            {"type": "text", "text": "ok"},
            {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "/a.py"}},
            {"type": "tool_use", "name": "Read", "input": {}},
            usage={
                "input_tokens": 1,
                "cache_creation_input_tokens": 2,
                "cache_read_input_tokens": 3,
            },
        )
    )
    assert kinds(events) == ["thinking", "assistant_text", "tool_call", "context_size"]
    thinking, text, call, ctx = events
    assert thinking.text == "hmm" and thinking.id.startswith(f"{MSG}:thinking:")
    assert call.id == f"{MSG}:toolu_1" and call.call_id == "toolu_1" and call.tool == "Read"
    assert call.tool_input == {"file_path": "/a.py"} and call.text == "/a.py"
    assert ctx.id == f"ctx:{MSG}" and ctx.tokens == 6
    assert text.timestamp == "T"


def test_string_content_and_api_errors() -> None:
    record = assistant(usage={"input_tokens": 0, "output_tokens": 0}, isApiErrorMessage=True)
    record["message"]["content"] = "API Error: 529 overloaded"
    events = parse(record)
    assert kinds(events) == ["assistant_text"]  # zero usage is no context size
    assert events[0].is_error


# --- user ---------------------------------------------------------------------------------


def test_typed_prompt_starts_a_turn() -> None:
    events = parse(user("fix the <div> in header.html", promptId="p1"))
    assert [(e.kind.value, e.id) for e in events] == [
        ("turn_start", "turn:u-1"),
        ("user_prompt", "u-1"),
    ]
    assert events[1].text == "fix the <div> in header.html" and events[1].meta == {
        "prompt_id": "p1"
    }


def test_prompt_with_image_blocks() -> None:
    content = [
        {"type": "image", "source": {"type": "base64", "data": "AAAA"}},
        {"type": "text", "text": "what is this?"},
    ]
    events = parse(user(content))
    assert kinds(events) == ["turn_start", "user_prompt"]
    assert events[1].text == "[image]\nwhat is this?"


@pytest.mark.parametrize("tag", sorted(WRAPPER_TAGS))
def test_harness_wrappers_are_not_prompts(tag: str) -> None:
    assert parse(user(f"<{tag}>stuff</{tag}>\n  <command-args></command-args>")) == []
    assert parse(user([{"type": "text", "text": f"<{tag}>x</{tag}>"}])) == []


@pytest.mark.parametrize("flag", ["isMeta", "isCompactSummary", "isSidechain"])
def test_flagged_user_lines_are_not_prompts(flag: str) -> None:
    assert parse(user("looks like a prompt", **{flag: True})) == []


def test_sidechain_assistant_lines_are_skipped() -> None:
    assert parse(assistant({"type": "text", "text": "sub"}, isSidechain=True)) == []


def test_tool_results() -> None:
    content = [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "out", "is_error": False},
        {
            "type": "tool_result",
            "tool_use_id": "toolu_2",
            "content": [
                {"type": "text", "text": "a"},
                {"type": "image"},
                {"type": "text", "text": "b"},
            ],
            "is_error": True,
        },
        {"type": "tool_result", "content": "no id"},
        {"type": "text", "text": "a harness note riding along"},
    ]
    events = parse(user(content))
    assert [(e.kind.value, e.id, e.text, e.call_id, e.is_error) for e in events] == [
        ("tool_result", "result:toolu_1", "out", "toolu_1", False),
        ("tool_result", "result:toolu_2", "a\n[image]\nb", "toolu_2", True),
    ]


@pytest.mark.parametrize(
    "content",
    [
        "[Request interrupted by user]",
        [{"type": "text", "text": "[Request interrupted by user for tool use]"}],
    ],
)
def test_interrupt_ends_the_turn(content: Any) -> None:
    events = parse(user(content))
    assert [(e.kind.value, e.id, e.meta) for e in events] == [
        ("turn_end", "turn_end:u-1", {"aborted": True})
    ]


def test_missing_uuid_falls_back_to_the_line_position() -> None:
    record = user("hi")
    del record["uuid"]
    events = parse(record, offset=42)
    assert [e.id for e in events] == ["turn:t.jsonl:L42", "t.jsonl:L42"]


# --- system -------------------------------------------------------------------------------


def test_compaction_without_metadata() -> None:
    events = parse({"type": "system", "subtype": "compact_boundary", "uuid": "c1"})
    assert [(e.kind.value, e.id, e.text) for e in events] == [
        ("compaction", "compact:c1", "Conversation compacted")
    ]


def test_auto_compaction_text_and_context() -> None:
    meta = {"trigger": "auto", "preTokens": 10, "postTokens": 3}
    events = parse(
        {"type": "system", "subtype": "compact_boundary", "uuid": "c1", "compactMetadata": meta}
    )
    assert events[0].text == "Conversation compacted (auto, 10 → 3 tokens)"
    assert events[0].meta == {"trigger": "auto", "pre_tokens": 10, "post_tokens": 3}
    assert (events[1].kind, events[1].id, events[1].tokens) == (
        EventKind.CONTEXT_SIZE,
        "ctx:compact:c1",
        3,
    )


@pytest.mark.parametrize("subtype", ["stop_hook_summary", "api_error", "informational", None])
def test_other_system_lines_say_nothing(subtype: str | None) -> None:
    assert parse({"type": "system", "subtype": subtype, "uuid": "s"}) == []


# --- hostile input ------------------------------------------------------------------------


@pytest.mark.parametrize("line", MALFORMED)
def test_malformed_lines_are_bad(line: bytes) -> None:
    result = parse_claude_line(line, 0, "t")
    assert result.bad and result.events == ()


@pytest.mark.parametrize("line", EMPTY_OBJECTS)
def test_empty_objects_are_not_bad(line: bytes) -> None:
    result = parse_claude_line(line, 0, "t")
    assert not result.bad and result.events == ()


def test_line_endings_bom_and_invalid_utf8() -> None:
    raw = json.dumps(user("héllo"), ensure_ascii=False).encode()
    plain = parse_claude_line(raw, 0, "t")
    assert parse_claude_line(raw + b"\r", 0, "t") == plain
    assert parse_claude_line(b"\xef\xbb\xbf" + raw + b"\r\n", 0, "t") == plain
    broken = parse_claude_line(raw.replace("é".encode(), b"\xe9"), 0, "t")
    assert broken.events[1].text == "h\ufffdllo"
    lone = parse_claude_line(
        b'{"type":"assistant","message":{"id":"m","content":[{"type":"text","text":"\\ud800"}]}}',
        0,
        "t",
    )
    assert lone.events[0].text == "\ud800"


def test_every_field_broken_in_every_fixture_line(caplog: pytest.LogCaptureFixture) -> None:
    names = (
        "user",
        "assistant",
        "system",
        "text",
        "thinking",
        "tool_use",
        "tool_result",
        "compact_boundary",
        "turn_duration",
    )
    count = 0
    with caplog.at_level(logging.ERROR):
        for _, raw in read_lines(CLAUDE_FIXTURE):
            obj = json.loads(raw)
            if obj.get("type") not in ("user", "assistant", "system"):
                continue
            for line in mutations(obj, names):
                result = parse_claude_line(line, 0, "t")
                assert not result.bad
                count += 1
    assert count > 1000
    assert not caplog.records, "the last-resort guard caught a parser bug"


def test_random_truncation_and_byte_flips(caplog: pytest.LogCaptureFixture) -> None:
    rnd = random.Random(20261122)
    with caplog.at_level(logging.ERROR):
        for _, raw in read_lines(CLAUDE_FIXTURE):
            for _ in range(10):
                assert parse_claude_line(raw[: rnd.randrange(len(raw))], 0, "t").bad
                flipped = bytearray(raw)
                flipped[rnd.randrange(len(raw))] = rnd.randrange(256)
                parse_claude_line(bytes(flipped), 0, "t")
    assert not caplog.records


def _events(line: bytes) -> list[Event]:
    result = parse_claude_line(line, 0, "t")
    assert not result.bad
    return list(result.events)


def _tool_results(n: int) -> bytes:
    parts = [{"type": "text", "text": "y\n"}] * n
    return json.dumps(
        user([{"type": "tool_result", "tool_use_id": "t", "content": parts}])
    ).encode()


#: name -> (line of size n, the n of the ten-megabyte case).
HUGE: dict[str, tuple[Callable[[int], bytes], int]] = {
    "assistant text": (
        lambda n: json.dumps(assistant({"type": "text", "text": "x" * n})).encode(),
        10_000_000,
    ),
    "tool result parts": (_tool_results, 500_000),
    "prompt of spaces": (
        lambda n: json.dumps(user(" " * n + "<b>" + "z" * 100)).encode(),
        10_000_000,
    ),
    "command of spaces": (
        lambda n: json.dumps(user("<command-name>" + " " * n)).encode(),
        10_000_000,
    ),
}


def test_ten_megabyte_lines_parse_whole() -> None:
    text, mb10 = HUGE["assistant text"]
    assert len(_events(text(mb10))[0].text) == 10_000_000
    parts, n = HUGE["tool result parts"]
    assert len(_events(parts(n))[0].text) == 1_500_000 - 1
    spaces, n = HUGE["prompt of spaces"]
    assert kinds(_events(spaces(n))) == ["turn_start", "user_prompt"]
    command, n = HUGE["command of spaces"]
    assert _events(command(n)) == []


@pytest.mark.parametrize("name", list(HUGE))
def test_huge_lines_parse_in_linear_time(name: str) -> None:
    make, n = HUGE[name]
    assert_linear(_events, make, n // SCALE, what=name)
