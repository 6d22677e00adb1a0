"""The fake models' limit, stall, question and approval directives, in both wire formats.

What the real CLIs do with each answer is recorded in docs/cli-signals.md; these tests pin the
wire shapes those observations were made with.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from bridge.devtools.fake_models import FakeAnthropic, FakeModelServer, FakeOpenAI
from bridge.devtools.fake_rules import LimitBook, Turn, decide, parse_questions
from tests.unit.test_fake_models import (
    call,
    claude_body,
    claude_stream,
    cmsg,
    codex_body,
    codex_stream,
    sse,
    user,
)


@pytest.fixture
def claude() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def codex() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def post(url: str, body: Any) -> tuple[int, dict[str, str], bytes]:
    """Like `call`, but also returns the response headers (lowercased)."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def claude_text(events: list[tuple[str, dict[str, Any]]]) -> str:
    text: str = next(d for n, d in events if n == "content_block_delta")["delta"]["text"]
    return text


def codex_text(events: list[tuple[str, dict[str, Any]]]) -> str:
    text: str = next(d for n, d in events if n == "response.output_text.delta")["delta"]
    return text


# LIMIT / LIMITWARN ----------------------------------------------------------------------------


def test_claude_limit_answers_429_with_unified_headers_until_the_window_passes(
    claude: FakeAnthropic,
) -> None:
    body = claude_body(user("work LIMIT:0.4"))
    status, headers, raw = post(claude.url + "/v1/messages?beta=true", body)
    assert status == 429
    assert json.loads(raw) == {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "This request would exceed your account's rate limit. "
            "Please try again later.",
        },
    }
    assert headers["anthropic-ratelimit-unified-status"] == "rejected"
    assert headers["anthropic-ratelimit-unified-5h-status"] == "rejected"
    assert headers["anthropic-ratelimit-unified-representative-claim"] == "five_hour"
    reset = int(headers["anthropic-ratelimit-unified-reset"])
    assert reset == int(headers["anthropic-ratelimit-unified-5h-reset"])
    assert reset >= time.time()
    assert int(headers["retry-after"]) >= 1
    first = claude.requests[-1]
    assert (first.kind, first.prompt, first.reply["status"]) == ("turn", "work LIMIT:0.4", 429)

    # The retry is limited too (state is in the server), until the window has passed.
    status, _, _ = post(claude.url + "/v1/messages", body)
    assert status == 429
    claude.wait_for(lambda s: _answers(s, body) == 200, timeout=10)
    assert claude_text(claude_stream(claude, body)) == "ack: work LIMIT:0.4"
    assert claude.prompts() == ["work LIMIT:0.4"]


def _answers(server: FakeModelServer, body: Any) -> int:
    path = "/v1/messages" if isinstance(server, FakeAnthropic) else "/v1/responses"
    return call(server.url + path, body)[0]


def test_claude_limit_without_retry_after(claude: FakeAnthropic) -> None:
    claude.limit_retry_after = False
    status, headers, _ = post(claude.url + "/v1/messages", claude_body(user("LIMIT: 60")))
    assert status == 429 and "retry-after" not in headers
    assert headers["anthropic-ratelimit-unified-status"] == "rejected"


def test_codex_limit_answers_usage_limit_reached(codex: FakeOpenAI) -> None:
    body = codex_body(cmsg("user", "work LIMIT:0.4"))
    status, headers, raw = post(codex.url + "/v1/responses", body)
    assert status == 429
    error = json.loads(raw)["error"]
    assert error["type"] == "usage_limit_reached" and error["plan_type"] == "plus"
    assert error["resets_at"] >= time.time() and error["resets_in_seconds"] >= 1
    assert headers["x-codex-primary-used-percent"] == "100"
    assert headers["x-codex-primary-window-minutes"] == "300"
    assert int(headers["x-codex-primary-reset-at"]) == error["resets_at"]
    assert headers["x-codex-active-limit"] == "codex"
    codex.wait_for(lambda s: _answers(s, body) == 200, timeout=10)
    assert codex_text(codex_stream(codex, body)) == "ack: work LIMIT:0.4"


def test_limit_window_is_per_directive_and_the_last_one_counts(claude: FakeAnthropic) -> None:
    long = claude_body(user("a LIMIT:300"))
    assert _answers(claude, long) == 429
    # Claude resends a prompt that failed at the limit together with the next one.
    merged = claude_body(user("a LIMIT:300\n\nb LIMIT:0"))
    assert _answers(claude, merged) == 200
    assert _answers(claude, claude_body(user("no limit here"))) == 200
    assert _answers(claude, long) == 429
    claude.limit(60)
    claude.clear_limits()
    assert _answers(claude, claude_body(user("no limit here"))) == 200


def test_limit_method_limits_the_next_requests_whatever_the_prompt(codex: FakeOpenAI) -> None:
    codex.limit(0.3)
    body = codex_body(cmsg("user", "plain"))
    assert _answers(codex, body) == 429
    assert _answers(codex, body) == 429
    codex.wait_for(lambda s: _answers(s, body) == 200, timeout=10)
    # Side requests (titles) are never limited.
    codex.limit(60)
    assert _answers(codex, codex_body(cmsg("user", "title"), tools=False)) == 200


def test_limit_book_windows() -> None:
    book = LimitBook()
    assert book.reset_at("x LIMIT:10", 100.0) == 110.0
    assert book.reset_at("x LIMIT:10", 105.0) == 110.0
    assert book.reset_at("again LIMIT:10", 111.0) is None  # same directive: window used up
    assert book.reset_at("LIMITWARN:80", 100.0) is None
    book.force(5)
    assert book.reset_at("", 200.0) == 205.0
    assert book.reset_at("", 206.0) is None
    assert book.reset_at("", 207.0) is None


def test_claude_limitwarn_reports_utilization_on_normal_answers(claude: FakeAnthropic) -> None:
    status, headers, raw = post(claude.url + "/v1/messages", claude_body(user("LIMITWARN:80")))
    assert status == 200 and sse(raw)[-1][0] == "message_stop"
    assert headers["anthropic-ratelimit-unified-5h-utilization"] == "0.8"
    assert headers["anthropic-ratelimit-unified-status"] == "allowed_warning"
    assert headers["anthropic-ratelimit-unified-5h-surpassed-threshold"] == "0.75"
    assert int(headers["anthropic-ratelimit-unified-5h-reset"]) > time.time()
    _, headers, _ = post(claude.url + "/v1/messages", claude_body(user("LIMITWARN:10")))
    assert headers["anthropic-ratelimit-unified-status"] == "allowed"
    _, headers, _ = post(claude.url + "/v1/messages", claude_body(user("plain")))
    assert not any(k.startswith("anthropic-ratelimit") for k in headers)


def test_codex_limitwarn_reports_rate_limit_headers(codex: FakeOpenAI) -> None:
    status, headers, _ = post(codex.url + "/v1/responses", codex_body(cmsg("user", "LIMITWARN:85")))
    assert status == 200
    assert headers["x-codex-primary-used-percent"] == "85"
    assert headers["x-codex-primary-window-minutes"] == "300"
    assert int(headers["x-codex-primary-reset-at"]) > time.time()
    assert headers["x-codex-secondary-window-minutes"] == "10080"
    _, headers, _ = post(codex.url + "/v1/responses", codex_body(cmsg("user", "plain")))
    assert "x-codex-primary-used-percent" not in headers


# STALL ----------------------------------------------------------------------------------------


def _read_events(sock: socket.socket, want: int) -> str:
    data = b""
    while data.count(b"\n\n") < want:  # headers end in CRLF CRLF, events in LF LF
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode()


def _open_stream(server: FakeModelServer, path: str, body: Any) -> socket.socket:
    raw = json.dumps(body).encode()
    sock = socket.create_connection((server.host, server.port), timeout=10)
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    sock.sendall(f"{head}Content-Length: {len(raw)}\r\n\r\n".encode() + raw)
    return sock


@pytest.mark.parametrize("server_cls", [FakeAnthropic, FakeOpenAI])
def test_stall_sends_first_events_then_goes_quiet_then_finishes(
    server_cls: type[FakeModelServer],
) -> None:
    with server_cls() as server:
        if isinstance(server, FakeAnthropic):
            path, body = "/v1/messages", claude_body(user("STALL:0.5"))
            first, last = "message_start", "message_stop"
        else:
            path, body = "/v1/responses", codex_body(cmsg("user", "STALL:0.5"))
            first, last = "response.created", "response.completed"
        sock = _open_stream(server, path, body)
        try:
            head = _read_events(sock, 2)
            assert f"event: {first}" in head and f"event: {last}" not in head
            rest = b""
            while chunk := sock.recv(65536):
                rest += chunk
            assert f"event: {last}" in rest.decode()
        finally:
            sock.close()
        assert server.requests[-1].reply["stall"] == 0.5


def test_stall_survives_a_client_that_hangs_up(claude: FakeAnthropic) -> None:
    sock = _open_stream(claude, "/v1/messages", claude_body(user("STALL:0.3")))
    _read_events(sock, 2)
    sock.close()  # the CLI gave up during the silence
    claude.wait_for(lambda s: s.requests[-1].reply.get("stall") == 0.3, timeout=5)
    # The server answers the next request normally.
    assert claude_text(claude_stream(claude, claude_body(user("after")))) == "ack: after"


def test_stop_cuts_a_stall_short() -> None:
    server = FakeAnthropic().start()
    sock = _open_stream(server, "/v1/messages", claude_body(user("STALL:600")))
    _read_events(sock, 2)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    stopper.join(timeout=10)
    sock.close()
    assert not stopper.is_alive()


# ASK / ASKMULTI -------------------------------------------------------------------------------


def test_parse_questions() -> None:
    assert parse_questions("Which color for zz91?|red| blue |", multi=False) == [
        {
            "question": "Which color for zz91?",
            "header": "Which",
            "options": [
                {"label": "red", "description": "option red"},
                {"label": "blue", "description": "option blue"},
            ],
            "multiSelect": False,
        }
    ]
    assert parse_questions("???|a|b", multi=True)[0]["header"] == "Question"


@pytest.mark.parametrize(("directive", "multi"), [("ASK", False), ("ASKMULTI", True)])
def test_claude_ask_calls_ask_user_question_then_reports_the_answer(
    claude: FakeAnthropic, directive: str, multi: bool
) -> None:
    prompt = user(f"{directive}: Which toppings?|cheese|ham|olives")
    events = claude_stream(claude, claude_body(prompt))
    start = next(d for n, d in events if n == "content_block_start")["content_block"]
    assert start["type"] == "tool_use" and start["name"] == "AskUserQuestion"
    delta = next(d for n, d in events if n == "content_block_delta")["delta"]
    tool_input = json.loads(delta["partial_json"])
    (question,) = tool_input["questions"]
    assert question["question"] == "Which toppings?" and question["multiSelect"] is multi
    assert [o["label"] for o in question["options"]] == ["cheese", "ham", "olives"]

    answer = (
        'Your questions have been answered: "Which toppings?"="cheese, olives". '
        "You can now continue with these answers in mind."
    )
    use = {**start, "input": tool_input}
    result = {"type": "tool_result", "tool_use_id": start["id"], "content": answer}
    body = claude_body(
        prompt, {"role": "assistant", "content": [use]}, {"role": "user", "content": [result]}
    )
    assert claude_text(claude_stream(claude, body)) == f"answered: {answer}"


def test_codex_ask_calls_request_user_input(codex: FakeOpenAI) -> None:
    prompt = cmsg("user", "ASK: Deploy now?|yes|no")
    events = codex_stream(codex, codex_body(prompt))
    item = next(d for n, d in events if n == "response.output_item.done")["item"]
    assert item["type"] == "function_call" and item["name"] == "request_user_input"
    (question,) = json.loads(item["arguments"])["questions"]
    assert question["id"] == "q1" and question["question"] == "Deploy now?"
    assert [o["label"] for o in question["options"]] == ["yes", "no"]
    output = {
        "type": "function_call_output",
        "call_id": item["call_id"],
        "output": '{"answers":{}}',
    }
    events = codex_stream(codex, codex_body(prompt, item, output))
    assert codex_text(events) == 'answered: {"answers":{}}'


# APPROVE --------------------------------------------------------------------------------------


def test_claude_approve_runs_bash_and_reports_the_result(claude: FakeAnthropic) -> None:
    prompt = user("APPROVE: touch f3.txt")
    events = claude_stream(claude, claude_body(prompt))
    start = next(d for n, d in events if n == "content_block_start")["content_block"]
    assert start["name"] == "Bash"
    delta = next(d for n, d in events if n == "content_block_delta")["delta"]
    use = {**start, "input": json.loads(delta["partial_json"])}
    assert use["input"]["command"] == "touch f3.txt"
    denied = {"type": "tool_result", "tool_use_id": start["id"], "is_error": True,
              "content": "denied by the lab hook"}  # fmt: skip
    body = claude_body(
        prompt, {"role": "assistant", "content": [use]}, {"role": "user", "content": [denied]}
    )
    assert claude_text(claude_stream(claude, body)) == "result: denied by the lab hook"


def test_codex_approve_asks_for_escalation_and_reports_the_output(codex: FakeOpenAI) -> None:
    prompt = cmsg("user", "APPROVE: echo hi > f.txt")
    events = codex_stream(codex, codex_body(prompt))
    item = next(d for n, d in events if n == "response.output_item.done")["item"]
    args = json.loads(item["arguments"])
    assert item["name"] == "exec_command" and args["cmd"] == "echo hi > f.txt"
    assert args["sandbox_permissions"] == "require_escalated" and args["justification"]
    output = "Chunk ID: 1\nWall time: 0.0 seconds\nProcess exited with code 0\nOutput:\nhi\nthere\n"
    out_item = {"type": "function_call_output", "call_id": item["call_id"], "output": output}
    events = codex_stream(codex, codex_body(prompt, item, out_item))
    assert codex_text(events) == "result: hi there"


def test_decide_keeps_run_and_plain_answers() -> None:
    assert decide(Turn(kind="turn", prompt="RUN: ls"), 5).command == "ls"
    assert decide(Turn(kind="turn", prompt="RUN: ls"), 5).approve is False
    reply = decide(Turn(kind="turn", prompt="hi LIMITWARN:50 STALL:2"), 5)
    assert (reply.text, reply.warn_percent, reply.stall) == (
        "ack: hi LIMITWARN:50 STALL:2",
        50.0,
        2.0,
    )
    result = Turn(kind="tool_result", prompt="RUN: ls", tool_output="a\nb", tool_name="Bash")
    assert decide(result, 5).text == "ran: ls -> a"


# WRITE ----------------------------------------------------------------------------------------


def test_claude_write_directive_is_a_write_tool_call(claude: FakeAnthropic) -> None:
    prompt = user("save WRITE:/work/app/.env|A=1\\nB=2")
    events = claude_stream(claude, claude_body(prompt))
    start = next(d for n, d in events if n == "content_block_start")["content_block"]
    assert start["name"] == "Write"
    delta = next(d for n, d in events if n == "content_block_delta")["delta"]
    assert json.loads(delta["partial_json"]) == {
        "file_path": "/work/app/.env",
        "content": "A=1\nB=2",
    }
    reply = decide(Turn("turn", prompt="save WRITE:/work/app/.env|A=1"), 10)
    assert reply.write == ("/work/app/.env", "A=1") and reply.text.startswith("ack:")
