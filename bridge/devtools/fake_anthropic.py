"""A loopback stand-in for the Anthropic Messages API, enough to drive the real Claude Code.

Claude Code runs its turns through `POST /v1/messages` with `stream: true`; everything else it
sends (titles, token counts, probes) only has to be answered harmlessly so the TUI stays quiet.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from bridge.devtools.fake_script import (
    SUMMARY_MARKER,
    FakeModelServer,
    LoggedRequest,
    Turn,
    _Handler,
    is_injected,
    one_line,
    schema_answer,
    send_json,
    send_sse,
)

COMPACT_HINTS = (
    "create a detailed summary of the conversation",
    "your task is to create a detailed summary",
    "summarize the conversation",
)
"""Phrases of Claude Code's `/compact` (and auto-compact) instruction, matched lowercase."""


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def _is_compact(text: str) -> bool:
    return any(h in text.lower() for h in COMPACT_HINTS)


def _human_text(message: dict[str, Any]) -> str | None:
    """Claude merges reminders, slash-command echoes and the prompt into one user message; only
    the blocks a person typed count."""
    texts = [
        text
        for b in _blocks(message)
        if b.get("type") == "text"
        and (text := str(b.get("text", ""))).strip()
        and not is_injected(text)
        and not _is_compact(text)
    ]
    return "\n".join(texts) if texts else None


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        return "\n".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
    return str(content or "")


def classify(body: Any) -> Turn:
    """Reduce a Messages request to the script's view.

    Claude Code 2.1 puts `role: system` messages after the user's, so "last message" means the
    last *user* message. `/compact` reuses the main request shape (tools included) with the
    summary instruction appended to the last user message; side calls carry no tools.
    """
    if not isinstance(body, dict):
        return Turn(kind="side")
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    users = [m for m in messages if m.get("role") == "user"]
    humans = [t for m in users if (t := _human_text(m))]
    prompt = humans[-1] if humans else None
    last = users[-1] if users else {}
    texts = [str(b.get("text", "")) for b in _blocks(last) if b.get("type") == "text"]
    if any(_is_compact(t) for t in texts):
        return Turn(kind="compact", prompt=prompt, history_prompts=len(humans))
    if not body.get("tools"):
        return Turn(kind="side", prompt=_human_text(last) if last else None)
    results = [b for b in _blocks(last) if b.get("type") == "tool_result"]
    if results and _human_text(last) is None:
        uses = {
            str(b.get("id")): b.get("input")
            for m in messages
            if m.get("role") == "assistant"
            for b in _blocks(m)
            if b.get("type") == "tool_use"
        }
        names = {
            str(b.get("id")): str(b.get("name"))
            for m in messages
            if m.get("role") == "assistant"
            for b in _blocks(m)
            if b.get("type") == "tool_use"
        }
        use_id = str(results[-1].get("tool_use_id"))
        tool_input = uses.get(use_id)
        cmd = tool_input.get("command") if isinstance(tool_input, dict) else None
        since = next((i for i in range(len(users) - 1, -1, -1) if _human_text(users[i])), -1)
        in_turn = sum(
            b.get("type") == "tool_result" for m in users[since + 1 :] for b in _blocks(m)
        )
        return Turn(
            kind="tool_result",
            prompt=prompt,
            tool_output=_result_text(results[-1]),
            tool_command=str(cmd) if cmd is not None else None,
            tool_name=names.get(use_id),
            history_prompts=len(humans),
            results_in_turn=in_turn,
        )
    return Turn(kind="turn", prompt=prompt, history_prompts=len(humans))


def _usage(n: int, output_tokens: int) -> dict[str, Any]:
    """Most of the context as cache reads, like a warm real session; Claude sums all three."""
    first = min(3, n)
    return {
        "input_tokens": first,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": n - first,
        "output_tokens": output_tokens,
    }


class FakeAnthropic(FakeModelServer):
    """Scripted Anthropic Messages API. Point Claude Code at it with `ANTHROPIC_BASE_URL`."""

    name = "fake-anthropic"
    limit_retry_after = True
    """Send `retry-after` on usage-limit 429s. Claude Code 2.1.328/2.1.332 give up at once when it
    is present (StopFailure `rate_limit`) and retry 10 times over ~3.5 min when it is absent
    (docs/cli-signals.md)."""

    def route(self, h: _Handler, req: LoggedRequest, path: str, body: Any) -> None:
        if h.command == "POST" and path == "/v1/messages/count_tokens":
            req.kind = "count_tokens"
            size = len(json.dumps(body)) // 4 if body is not None else 0
            send_json(h, 200, {"input_tokens": max(1, size)})
        elif h.command == "POST" and path == "/v1/messages":
            self._messages(h, req, body if isinstance(body, dict) else {})
        elif h.command in ("GET", "HEAD") and path in ("/", "", "/api/hello"):
            req.kind = "probe"  # connectivity check at startup (HEAD /api/hello)
            send_json(h, 200, {"ok": True})
        else:
            msg = f"fake-anthropic has no route {h.command} {path}"
            send_json(
                h, 404, {"type": "error", "error": {"type": "not_found_error", "message": msg}}
            )

    def _messages(self, h: _Handler, req: LoggedRequest, body: dict[str, Any]) -> None:
        turn = classify(body)
        reset = self.limited(req, turn)
        if reset is not None:
            body_, headers = limit_answer(reset, time.time())
            if not self.limit_retry_after:
                headers.pop("retry-after")
            send_json(h, 429, body_, headers)
            return
        if turn.kind in ("side", "compact"):
            text = _summary(turn) if turn.kind == "compact" else _side_answer(body)
            reply = self.plan_fixed(req, turn, text)
        else:
            reply = self.plan(req, turn)
        self.pause(reply, turn)
        usage = reply.usage if reply.usage is not None else self._default_usage
        model = str(body.get("model") or "claude-fake")
        msg_id = self.next_id("msg")
        block: dict[str, Any]
        if reply.questions is not None:
            block = {
                "type": "tool_use",
                "id": self.next_id("toolu"),
                "name": "AskUserQuestion",
                "input": {"questions": reply.questions},
            }
            stop_reason = "tool_use"
            out_tokens = 40
        elif reply.write is not None:
            block = {
                "type": "tool_use",
                "id": self.next_id("toolu"),
                "name": "Write",
                "input": {"file_path": reply.write[0], "content": reply.write[1]},
            }
            stop_reason = "tool_use"
            out_tokens = 20
        elif reply.command is not None:
            tool_input = {"command": reply.command, "description": "run"}
            block = {
                "type": "tool_use",
                "id": self.next_id("toolu"),
                "name": "Bash",
                "input": tool_input,
            }
            stop_reason = "tool_use"
            out_tokens = 20
        else:
            block = {"type": "text", "text": reply.text}
            stop_reason = "end_turn"
            out_tokens = max(1, len(reply.text) // 4)
        message = {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [block],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": _usage(usage, out_tokens),
        }
        headers = warn_headers(reply.warn_percent, time.time())
        if not body.get("stream"):
            send_json(h, 200, message, headers)
            return
        start = {**message, "content": [], "stop_reason": None, "usage": _usage(usage, 1)}
        if block["type"] == "tool_use":
            open_block = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        else:
            open_block = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": reply.text}
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"type": "message_start", "message": start}),
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": open_block}),
            ("ping", {"type": "ping"}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta",
                               "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                               "usage": _usage(usage, out_tokens)}),
            ("message_stop", {"type": "message_stop"}),
        ]  # fmt: skip
        stall = (lambda: self.stall(reply.stall)) if reply.stall > 0 else None
        send_sse(h, events, self.next_id("req"), headers=headers, stall=stall)


LIMIT_MESSAGE = "This request would exceed your account's rate limit. Please try again later."
FIVE_HOURS = 5 * 3600


def limit_answer(reset: float, now: float) -> tuple[dict[str, Any], dict[str, str]]:
    """Body and headers of the API's 429 at the account's 5-hour usage limit."""
    reset_s = str(math.ceil(reset))
    headers = {
        "anthropic-ratelimit-unified-status": "rejected",
        "anthropic-ratelimit-unified-reset": reset_s,
        "anthropic-ratelimit-unified-5h-status": "rejected",
        "anthropic-ratelimit-unified-5h-reset": reset_s,
        "anthropic-ratelimit-unified-5h-utilization": "1.0",
        "anthropic-ratelimit-unified-representative-claim": "five_hour",
        "retry-after": str(max(1, math.ceil(reset - now))),
    }
    body = {"type": "error", "error": {"type": "rate_limit_error", "message": LIMIT_MESSAGE}}
    return body, headers


def warn_headers(percent: float | None, now: float) -> dict[str, str]:
    """Headers of a normal answer that reports `percent` of the 5-hour limit used
    (`LIMITWARN:`); Claude reads `...-5h-utilization` as a fraction."""
    if percent is None:
        return {}
    share = f"{percent / 100:g}"
    reset = str(math.ceil(now + FIVE_HOURS))
    status = "allowed_warning" if percent >= 75 else "allowed"
    headers = {
        "anthropic-ratelimit-unified-status": status,
        "anthropic-ratelimit-unified-reset": reset,
        "anthropic-ratelimit-unified-5h-status": status,
        "anthropic-ratelimit-unified-5h-reset": reset,
        "anthropic-ratelimit-unified-5h-utilization": share,
        "anthropic-ratelimit-unified-representative-claim": "five_hour",
    }
    if status == "allowed_warning":
        headers["anthropic-ratelimit-unified-5h-surpassed-threshold"] = "0.75"
    return headers


def _side_answer(body: dict[str, Any]) -> str:
    """Titles come with a JSON schema in `output_config.format`; anything else gets words."""
    fmt = (body.get("output_config") or {}).get("format") or {}
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return schema_answer(fmt.get("schema"))
    return "Fake session"


def _summary(turn: Turn) -> str:
    last = one_line(turn.prompt or "", 100)
    return (
        f"<summary>{SUMMARY_MARKER}: {turn.history_prompts} prompt(s) so far; "
        f"last: {last}</summary>"
    )
