"""The fake model servers speak the wire shapes the real CLIs parse and follow the shared script.

Request bodies here are trimmed copies of what Claude Code 2.1.328 and Codex 0.169.0 actually sent
(see docs/real-cli-recipe.md), so a drift in the parsers shows up here before it hangs a real CLI.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.devtools.fake_models import FakeAnthropic, FakeModelServer, FakeOpenAI, Reply

REMINDER = "<system-reminder>\nAs you answer the user's questions...\n</system-reminder>"
ENV_CTX = "<environment_context>\n  <cwd>/srv/agents/demo</cwd>\n</environment_context>"
TOOLS = [{"name": "Bash", "input_schema": {"type": "object"}}]
CODEX_OUTPUT = (
    "Chunk ID: c3b585\nWall time: 0.0000 seconds\nProcess exited with code 0\n"
    "Original token count: 4\nOutput:\nhello-from-tool\nsecond\n"
)


@pytest.fixture
def claude() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def codex() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def call(url: str, body: Any = None, method: str = "POST") -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for chunk in raw.decode().split("\n\n"):
        if not chunk.strip():
            continue
        fields = dict(line.split(": ", 1) for line in chunk.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def claude_body(*messages: dict[str, Any], stream: bool = True, tools: bool = True) -> Any:
    body: dict[str, Any] = {"model": "claude-opus-5-5", "max_tokens": 128000, "stream": stream}
    body["messages"] = list(messages)
    if tools:
        body["tools"] = TOOLS
    return body


def user(*texts: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": t} for t in texts]}


def claude_stream(server: FakeModelServer, body: Any) -> list[tuple[str, dict[str, Any]]]:
    status, raw = call(server.url + "/v1/messages?beta=true", body)
    assert status == 200
    return sse(raw)


def codex_body(*items: dict[str, Any], tools: bool = True) -> Any:
    body: dict[str, Any] = {"model": "gpt-5", "stream": True, "input": list(items)}
    body["tools"] = [{"type": "function", "name": "exec_command"}] if tools else []
    return body


def cmsg(role: str, text: str) -> dict[str, Any]:
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


def codex_stream(server: FakeModelServer, body: Any) -> list[tuple[str, dict[str, Any]]]:
    status, raw = call(server.url + "/v1/responses", body)
    assert status == 200
    return sse(raw)


def completed(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    assert events[-1][0] == "response.completed"
    response: dict[str, Any] = events[-1][1]["response"]
    return response


# Anthropic ------------------------------------------------------------------------------------


def test_anthropic_text_turn_streams_the_full_event_sequence(claude: FakeAnthropic) -> None:
    body = claude_body(user(REMINDER, "hello there"), {"role": "system", "content": "# Env"})
    events = claude_stream(claude, body)
    names = [name for name, _ in events if name != "ping"]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    assert events[0][1]["message"]["model"] == "claude-opus-5-5"
    delta = next(d for n, d in events if n == "content_block_delta")
    assert delta["delta"] == {"type": "text_delta", "text": "ack: hello there"}
    final = next(d for n, d in events if n == "message_delta")
    assert final["delta"]["stop_reason"] == "end_turn"
    usage = final["usage"]
    assert usage["input_tokens"] + usage["cache_read_input_tokens"] == 1000
    assert claude.prompts() == ["hello there"]


def test_anthropic_run_makes_a_bash_tool_call_then_reports_its_output(
    claude: FakeAnthropic,
) -> None:
    first = user("please RUN: echo hi && date")
    events = claude_stream(claude, claude_body(first))
    start = next(d for n, d in events if n == "content_block_start")["content_block"]
    assert start["type"] == "tool_use" and start["name"] == "Bash"
    delta = next(d for n, d in events if n == "content_block_delta")["delta"]
    assert delta["type"] == "input_json_delta"
    assert json.loads(delta["partial_json"]) == {"command": "echo hi && date", "description": "run"}
    assert next(d for n, d in events if n == "message_delta")["delta"]["stop_reason"] == "tool_use"

    use = {**start, "input": json.loads(delta["partial_json"])}
    result = {"type": "tool_result", "tool_use_id": start["id"], "content": "hi\nMon"}
    body = claude_body(
        first, {"role": "assistant", "content": [use]}, {"role": "user", "content": [result]}
    )
    events = claude_stream(claude, body)
    text = next(d for n, d in events if n == "content_block_delta")["delta"]["text"]
    assert text == "ran: echo hi && date -> hi"
    assert [r.kind for r in claude.requests] == ["turn", "tool_result"]
    assert claude.prompts() == ["please RUN: echo hi && date"]


def test_anthropic_usage_directive_and_sticky_default(claude: FakeAnthropic) -> None:
    events = claude_stream(claude, claude_body(user("big USAGE: 150000")))
    usage = events[0][1]["message"]["usage"]
    assert (usage["input_tokens"], usage["cache_read_input_tokens"]) == (3, 149997)
    assert usage["cache_creation_input_tokens"] == 0
    claude.set_usage(42000)
    events = claude_stream(claude, claude_body(user("small")))
    usage = next(d for n, d in events if n == "message_delta")["usage"]
    assert usage["input_tokens"] + usage["cache_read_input_tokens"] == 42000


def test_anthropic_non_stream_count_tokens_and_side_requests(claude: FakeAnthropic) -> None:
    status, raw = call(claude.url + "/v1/messages", claude_body(user("plain"), stream=False))
    message = json.loads(raw)
    assert status == 200 and message["type"] == "message"
    assert message["content"] == [{"type": "text", "text": "ack: plain"}]

    status, raw = call(claude.url + "/v1/messages/count_tokens", claude_body(user("x")))
    assert status == 200 and json.loads(raw)["input_tokens"] > 0

    title = claude_body(user("<session>\nplain\n</session>"), tools=False)
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    title["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    events = claude_stream(claude, title)
    text = next(d for n, d in events if n == "content_block_delta")["delta"]["text"]
    assert set(json.loads(text)) == {"title"}
    assert [r.kind for r in claude.requests] == ["turn", "count_tokens", "side"]
    assert claude.prompts() == ["plain"]


def test_anthropic_compact_request_gets_a_summary_not_a_script_answer(
    claude: FakeAnthropic,
) -> None:
    claude.enqueue("canned")
    instruction = "CRITICAL: Respond with TEXT ONLY.\n\nYour task is to create a detailed summary"
    tool_result = {"type": "tool_result", "tool_use_id": "t1", "content": "hi"}
    last = {"role": "user", "content": [tool_result, {"type": "text", "text": instruction}]}
    events = claude_stream(claude, claude_body(user("first prompt"), last))
    text = next(d for n, d in events if n == "content_block_delta")["delta"]["text"]
    assert text.startswith("<summary>") and "first prompt" in text
    assert claude.requests[-1].kind == "compact"
    # After /compact Claude sends the summary back as a user message: not a human prompt.
    after = user(f"This session is being continued from a previous conversation.\n{text}")
    events = claude_stream(claude, claude_body(after, user(REMINDER, "next one")))
    text = next(d for n, d in events if n == "content_block_delta")["delta"]["text"]
    assert text == "canned"  # the queue was kept for the real turn
    assert claude.prompts() == ["next one"]


def test_anthropic_probe_and_unknown_paths_are_answered_and_logged(claude: FakeAnthropic) -> None:
    assert call(claude.url + "/api/hello", method="HEAD")[0] == 200
    status, raw = call(claude.url + "/v1/nope", {"x": 1})
    assert status == 404 and json.loads(raw)["type"] == "error"
    assert [(r.method, r.path, r.kind) for r in claude.requests] == [
        ("HEAD", "/api/hello", "probe"),
        ("POST", "/v1/nope", "other"),
    ]


# OpenAI ---------------------------------------------------------------------------------------


def test_openai_text_turn_streams_responses_events(codex: FakeOpenAI) -> None:
    events = codex_stream(codex, codex_body(cmsg("developer", "x"), cmsg("user", ENV_CTX),
                                            cmsg("user", "hello codex")))  # fmt: skip
    names = [n for n, _ in events]
    for needed in ("response.created", "response.output_item.added", "response.output_text.delta",
                   "response.output_item.done", "response.completed"):  # fmt: skip
        assert needed in names
    assert names[0] == "response.created"
    assert [d["sequence_number"] for _, d in events] == list(range(len(events)))
    delta = next(d for n, d in events if n == "response.output_text.delta")
    assert delta["delta"] == "ack: hello codex"
    done = next(d for n, d in events if n == "response.output_item.done")["item"]
    assert done["type"] == "message" and done["content"][0]["text"] == "ack: hello codex"
    usage = completed(events)["usage"]
    assert usage["input_tokens"] == 1000
    assert usage["input_tokens_details"] == {"cached_tokens": 0}
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert codex.prompts() == ["hello codex"]


def test_openai_run_makes_exec_command_call_then_reports_output(codex: FakeOpenAI) -> None:
    prompt = cmsg("user", "RUN: echo hello-from-tool\nUSAGE: 23000")
    events = codex_stream(codex, codex_body(prompt))
    item = next(d for n, d in events if n == "response.output_item.done")["item"]
    assert item["type"] == "function_call" and item["name"] == "exec_command"
    assert json.loads(item["arguments"]) == {"cmd": "echo hello-from-tool"}
    assert completed(events)["usage"]["input_tokens"] == 23000

    output = {"type": "function_call_output", "call_id": item["call_id"], "output": CODEX_OUTPUT}
    events = codex_stream(codex, codex_body(prompt, item, output))
    delta = next(d for n, d in events if n == "response.output_text.delta")["delta"]
    assert delta == "ran: echo hello-from-tool -> hello-from-tool"
    assert completed(events)["usage"]["input_tokens"] == 23000
    assert [r.kind for r in codex.requests] == ["turn", "tool_result"]


def test_openai_title_compaction_and_models(codex: FakeOpenAI) -> None:
    title = codex_body(cmsg("user", "Generate a concise title\n\nUser prompt:\nhi"), tools=False)
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    title["text"] = {"format": {"type": "json_schema", "schema": schema}}
    delta = next(d for n, d in codex_stream(codex, title) if n == "response.output_text.delta")
    assert list(json.loads(delta["delta"])) == ["title"]

    compact = cmsg("user", "You are performing a CONTEXT CHECKPOINT COMPACTION. Create a handoff")
    events = codex_stream(codex, codex_body(cmsg("user", "earlier"), compact, tools=False))
    summary = next(d for n, d in events if n == "response.output_text.delta")["delta"]
    assert "earlier" in summary
    prefix = "Another language model started to solve this problem and produced a summary"
    body = codex_body(cmsg("user", "earlier"), cmsg("user", f"{prefix}:\n{summary}"),
                      cmsg("user", "after compaction"))  # fmt: skip
    delta = next(d for n, d in codex_stream(codex, body) if n == "response.output_text.delta")
    assert delta["delta"] == "ack: after compaction"

    status, raw = call(codex.url + "/v1/models", method="GET")
    assert status == 200 and "data" in json.loads(raw)
    assert [r.kind for r in codex.requests] == ["side", "compact", "turn", "models"]
    assert codex.prompts() == ["after compaction"]


def test_openai_remote_compact_endpoint(codex: FakeOpenAI) -> None:
    status, raw = call(codex.url + "/v1/responses/compact", codex_body(cmsg("user", "p1")))
    assert status == 200
    assert json.loads(raw)["output"][0]["role"] == "user"
    assert codex.requests[-1].kind == "compact"


# Shared script and controls -------------------------------------------------------------------


@pytest.mark.parametrize("server_cls", [FakeAnthropic, FakeOpenAI])
def test_hostile_prompt_reaches_the_log_literally(server_cls: type[FakeModelServer]) -> None:
    hostile = (
        'don\'t `rm -rf` $(whoami) "q" <system-reminder>x</system-reminder>\n\ttab ' + "x" * 300
    )
    with server_cls() as server:
        if isinstance(server, FakeAnthropic):
            events = claude_stream(server, claude_body(user(REMINDER, hostile)))
            text = next(d for n, d in events if n == "content_block_delta")["delta"]["text"]
        else:
            events = codex_stream(server, codex_body(cmsg("user", hostile)))
            text = next(d for n, d in events if n == "response.output_text.delta")["delta"]
        assert server.prompts() == [hostile]
        assert "\n" not in text and text.startswith("ack: don't `rm -rf`")
        assert len(text) <= len("ack: ") + 200


def test_enqueue_takes_precedence_including_tool_calls(codex: FakeOpenAI) -> None:
    codex.enqueue(Reply(command="ls /"))
    codex.enqueue("second canned")
    events = codex_stream(codex, codex_body(cmsg("user", "anything")))
    item = next(d for n, d in events if n == "response.output_item.done")["item"]
    assert json.loads(item["arguments"]) == {"cmd": "ls /"}
    output = {"type": "function_call_output", "call_id": item["call_id"], "output": "bin\n"}
    events = codex_stream(codex, codex_body(cmsg("user", "anything"), item, output))
    assert (
        next(d for n, d in events if n == "response.output_text.delta")["delta"] == "second canned"
    )
    events = codex_stream(codex, codex_body(cmsg("user", "again")))
    assert next(d for n, d in events if n == "response.output_text.delta")["delta"] == "ack: again"


def test_retried_request_counts_as_one_prompt(claude: FakeAnthropic) -> None:
    body = claude_body(user("same"))
    claude_stream(claude, body)
    claude_stream(claude, body)
    follow = claude_body(user("same"), {"role": "assistant", "content": "ack"}, user("same"))
    claude_stream(claude, follow)
    assert claude.prompts() == ["same", "same"]


def test_slow_directive_delays_the_answer(claude: FakeAnthropic) -> None:
    started = time.monotonic()
    claude_stream(claude, claude_body(user("SLOW: 0.3 then answer")))
    assert time.monotonic() - started >= 0.3


def test_hold_parks_turns_until_release(claude: FakeAnthropic) -> None:
    claude.hold()
    results: list[list[tuple[str, dict[str, Any]]]] = []
    worker = threading.Thread(
        target=lambda: results.append(claude_stream(claude, claude_body(user("held"))))
    )
    worker.start()
    claude.wait_for(lambda s: s.prompts() == ["held"], timeout=5)
    assert results == []  # the model has the prompt but has not answered: agent is mid-turn
    claude.release()
    worker.join(timeout=5)
    assert results and results[0][-1][0] == "message_stop"


def test_stop_does_not_hang_on_a_held_request() -> None:
    server = FakeOpenAI().start()
    server.hold()
    worker = threading.Thread(
        target=lambda: call(server.url + "/v1/responses", codex_body(cmsg("user", "x"))),
        daemon=True,
    )
    worker.start()
    server.wait_for(lambda s: len(s.prompts()) == 1, timeout=5)
    server.stop()
    worker.join(timeout=5)
    assert not worker.is_alive()


def test_log_file_and_wait_for_timeout(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    with FakeAnthropic(log_path=log) as server:
        claude_stream(server, claude_body(user("logged")))
        server.wait_for(lambda s: len(s.requests) == 1, timeout=5)
        with pytest.raises(TimeoutError, match="fake-anthropic"):
            server.wait_for(lambda s: len(s.requests) == 2, timeout=0.2)
        url = server.url
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(d["method"], d["path"], d["kind"], d["prompt"]) for d in lines] == [
        ("POST", "/v1/messages?beta=true", "turn", "logged")
    ]
    assert lines[0]["body"]["messages"][0]["content"][0]["text"] == "logged"
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/", timeout=2)


def test_port_is_unavailable_before_start() -> None:
    server = FakeAnthropic()
    with pytest.raises(RuntimeError):
        _ = server.url
    with server:
        assert server.url == f"http://127.0.0.1:{server.port}" and server.port > 0


def test_cli_prints_both_urls_and_exits_on_interrupt(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.devtools.fake_models", "--log-dir", str(tmp_path)],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().split() for _ in range(2)]
        urls = dict(lines)
        assert set(urls) == {"fake-anthropic", "fake-openai"}
        assert urls["fake-openai"].endswith("/v1")
        status, _ = call(urls["fake-openai"] + "/responses", codex_body(cmsg("user", "cli")))
        assert status == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    logged = json.loads((tmp_path / "openai.jsonl").read_text().splitlines()[0])
    assert logged["prompt"] == "cli"
