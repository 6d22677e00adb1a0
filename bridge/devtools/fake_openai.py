"""A loopback stand-in for the OpenAI Responses API, enough to drive the real Codex CLI.

Codex (with a custom `model_providers` entry, `wire_api="responses"`) sends every turn to
`POST /v1/responses` and carries the whole history each time, so the newest human prompt and any
pending tool output can be read straight from `input`.
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
    Reply,
    Turn,
    _Handler,
    is_injected,
    one_line,
    schema_answer,
    send_json,
    send_sse,
)

COMPACT_HINTS = ("context checkpoint compaction", "handoff summary")
"""Phrases of Codex's local auto-compaction prompt, matched lowercase."""


def _texts(item: dict[str, Any]) -> list[str]:
    content = item.get("content")
    if isinstance(content, str):
        return [content]
    return [str(c.get("text", "")) for c in content or [] if isinstance(c, dict) and "text" in c]


def _is_compact(text: str) -> bool:
    return any(h in text.lower() for h in COMPACT_HINTS)


def _human_text(item: dict[str, Any]) -> str | None:
    """Codex sends `<environment_context>` and, after compaction, the summary as user messages;
    only what a person typed counts."""
    if item.get("type", "message") != "message" or item.get("role") != "user":
        return None
    texts = [t for t in _texts(item) if t.strip() and not is_injected(t) and not _is_compact(t)]
    return "\n".join(texts) if texts else None


def _output_text(item: dict[str, Any]) -> str:
    output = item.get("output")
    if isinstance(output, list):
        return "\n".join(str(o.get("text", "")) for o in output if isinstance(o, dict))
    if isinstance(output, dict):
        return str(output.get("content", ""))
    return str(output or "")


def classify(body: Any) -> Turn:
    """Reduce a Responses request to the script's view.

    The newer of the last human message and the last `function_call_output` decides between a
    new turn and a tool result. Local compaction (custom providers never get the remote
    `/responses/compact`) appends its instruction as a user message with `tools: []`; the
    per-turn title request also has no tools, which is what marks it as a side call.
    """
    if not isinstance(body, dict):
        return Turn(kind="side")
    raw = body.get("input")
    items = [{"type": "message", "role": "user", "content": raw}] if isinstance(raw, str) else raw
    items = [i for i in items or [] if isinstance(i, dict)]
    humans = [t for i in items if (t := _human_text(i))]
    prompt = humans[-1] if humans else None
    for item in reversed(items):
        if item.get("type", "message") == "message" and item.get("role") == "user":
            if any(_is_compact(t) for t in _texts(item)):
                return Turn(kind="compact", prompt=prompt, history_prompts=len(humans))
            if _human_text(item) is not None:
                break
        if item.get("type") == "function_call_output":
            calls = {
                str(i.get("call_id")): str(i.get("arguments") or "{}")
                for i in items
                if i.get("type") == "function_call"
            }
            names = {
                str(i.get("call_id")): str(i.get("name"))
                for i in items
                if i.get("type") == "function_call"
            }
            cmd: str | None = None
            try:
                args = json.loads(calls.get(str(item.get("call_id")), "{}"))
                cmd = args.get("cmd") or args.get("command") if isinstance(args, dict) else None
            except ValueError:
                pass
            if isinstance(cmd, list):
                cmd = " ".join(str(c) for c in cmd)
            since = next(
                (
                    n
                    for n in range(len(items) - 1, -1, -1)
                    if items[n].get("role") == "user" and _human_text(items[n]) is not None
                ),
                -1,
            )
            in_turn = sum(i.get("type") == "function_call_output" for i in items[since + 1 :])
            return Turn(
                kind="tool_result",
                prompt=prompt,
                tool_output=_output_text(item),
                tool_command=str(cmd) if cmd else None,
                tool_name=names.get(str(item.get("call_id"))),
                history_prompts=len(humans),
                results_in_turn=in_turn,
            )
    if not body.get("tools"):
        return Turn(kind="side", prompt=prompt)
    return Turn(kind="turn", prompt=prompt, history_prompts=len(humans))


def _usage(n: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": n,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": n + output_tokens,
    }


class FakeOpenAI(FakeModelServer):
    """Scripted OpenAI Responses API for a Codex `model_providers` entry ending in `/v1`."""

    name = "fake-openai"

    def route(self, h: _Handler, req: LoggedRequest, path: str, body: Any) -> None:
        if h.command == "POST" and path in ("/v1/responses", "/responses"):
            self._responses(h, req, body if isinstance(body, dict) else {})
        elif h.command == "POST" and path.endswith("/responses/compact"):
            self._compact_endpoint(h, req, body)
        elif h.command == "GET" and path.endswith("/models"):
            req.kind = "models"
            send_json(h, 200, {"object": "list", "data": [], "models": []})
        elif h.command in ("GET", "HEAD") and path in ("/", ""):
            req.kind = "probe"
            send_json(h, 200, {"ok": True})
        else:
            msg = f"fake-openai has no route {h.command} {path}"
            send_json(h, 404, {"error": {"type": "not_found", "message": msg}})

    def _compact_endpoint(self, h: _Handler, req: LoggedRequest, body: Any) -> None:
        """Remote compaction (used by Codex only for OpenAI-hosted providers): answer the
        shortened history as a single summary message."""
        turn = classify(body)
        req.kind, req.prompt = "compact", turn.prompt
        text = _summary(turn)
        req.reply = {"text": text}
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        }
        send_json(h, 200, {"output": [item]})

    def _responses(self, h: _Handler, req: LoggedRequest, body: dict[str, Any]) -> None:
        turn = classify(body)
        reset = self.limited(req, turn)
        if reset is not None:
            body_, headers = limit_answer(reset, time.time())
            send_json(h, 429, body_, headers)
            return
        if turn.kind in ("compact", "side"):
            text = _summary(turn) if turn.kind == "compact" else _side_answer(body)
            reply = self.plan_fixed(req, turn, text)
        else:
            reply = self.plan(req, turn)
        self.pause(reply, turn)
        usage = reply.usage if reply.usage is not None else self._default_usage
        resp_id = self.next_id("resp")
        model = str(body.get("model") or "gpt-fake")
        item: dict[str, Any]
        events: list[tuple[str, dict[str, Any]]] = []
        if reply.command is not None or reply.questions is not None:
            name, args = _call(reply)
            item = {
                "type": "function_call",
                "id": self.next_id("fc"),
                "call_id": self.next_id("call"),
                "name": name,
                "arguments": args,
                "status": "completed",
            }
            added = {**item, "arguments": "", "status": "in_progress"}
            events.append(_ev("response.output_item.added", output_index=0, item=added))
            events.append(
                _ev("response.function_call_arguments.delta", item_id=item["id"],
                    output_index=0, delta=args)
            )  # fmt: skip
            events.append(
                _ev("response.function_call_arguments.done", item_id=item["id"],
                    output_index=0, arguments=args)
            )  # fmt: skip
            out_tokens = 20
        else:
            part = {"type": "output_text", "text": reply.text, "annotations": []}
            item = {
                "type": "message",
                "id": self.next_id("msg"),
                "status": "completed",
                "role": "assistant",
                "content": [part],
            }
            added = {**item, "status": "in_progress", "content": []}
            ids = {"item_id": item["id"], "output_index": 0, "content_index": 0}
            events += [
                _ev("response.output_item.added", output_index=0, item=added),
                _ev("response.content_part.added", **ids, part={**part, "text": ""}),
                _ev("response.output_text.delta", **ids, delta=reply.text),
                _ev("response.output_text.done", **ids, text=reply.text),
                _ev("response.content_part.done", **ids, part=part),
            ]
            out_tokens = max(1, len(reply.text) // 4)
        events.append(_ev("response.output_item.done", output_index=0, item=item))
        response = {
            "id": resp_id,
            "object": "response",
            "created_at": int(time.time()),
            "model": model,
            "status": "in_progress",
            "output": [],
        }
        done = {**response, "status": "completed", "output": [item]}
        done["usage"] = _usage(usage, out_tokens)
        events.insert(0, _ev("response.created", response=response))
        events.append(_ev("response.completed", response=done))
        for seq, (_, data) in enumerate(events):
            data["sequence_number"] = seq
        headers = warn_headers(reply.warn_percent, time.time())
        stall = (lambda: self.stall(reply.stall)) if reply.stall > 0 else None
        send_sse(h, events, self.next_id("req"), headers=headers, stall=stall)


def _call(reply: Reply) -> tuple[str, str]:
    """(tool name, JSON arguments) of the function call a reply makes."""
    if reply.questions is not None:
        questions = [
            {
                "id": f"q{n}",
                "header": q["header"],
                "question": q["question"],
                "options": q["options"],
            }
            for n, q in enumerate(reply.questions, 1)
        ]
        return "request_user_input", json.dumps({"questions": questions})
    args: dict[str, Any] = {"cmd": reply.command}
    if reply.approve:
        args["sandbox_permissions"] = "require_escalated"
        args["justification"] = "APPROVE directive: this command needs your approval"
    return "exec_command", json.dumps(args)


LIMIT_MESSAGE = "The usage limit has been reached"
PRIMARY_WINDOW_MINUTES = 300
SECONDARY_WINDOW_MINUTES = 10080


def _window_headers(percent: float, reset: float, now: float) -> dict[str, str]:
    return {
        "x-codex-primary-used-percent": f"{percent:g}",
        "x-codex-primary-window-minutes": str(PRIMARY_WINDOW_MINUTES),
        "x-codex-primary-reset-at": str(math.ceil(reset)),
        "x-codex-primary-reset-after-seconds": str(max(0, math.ceil(reset - now))),
        "x-codex-secondary-used-percent": f"{min(percent, 100) / 4:g}",
        "x-codex-secondary-window-minutes": str(SECONDARY_WINDOW_MINUTES),
        "x-codex-secondary-reset-at": str(math.ceil(now + SECONDARY_WINDOW_MINUTES * 60)),
    }


def limit_answer(reset: float, now: float) -> tuple[dict[str, Any], dict[str, str]]:
    """Body and headers of the ChatGPT backend's 429 at a plan usage limit, as Codex parses it
    (`codex-api/src/api_bridge.rs`: `error.type == "usage_limit_reached"`, `plan_type`,
    `resets_at`; older releases read `resets_in_seconds`)."""
    error = {
        "type": "usage_limit_reached",
        "message": LIMIT_MESSAGE,
        "plan_type": "plus",
        "resets_at": math.ceil(reset),
        "resets_in_seconds": max(1, math.ceil(reset - now)),
    }
    headers = {**_window_headers(100, reset, now), "x-codex-active-limit": "codex"}
    return {"error": error}, headers


def warn_headers(percent: float | None, now: float) -> dict[str, str]:
    """Rate-limit headers of a normal answer with `percent` of the 5-hour window used
    (`LIMITWARN:`); Codex copies them into its `token_count` events' `rate_limits`."""
    if percent is None:
        return {}
    return _window_headers(percent, now + PRIMARY_WINDOW_MINUTES * 60, now)


def _ev(kind: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return kind, {"type": kind, **fields}


def _side_answer(body: dict[str, Any]) -> str:
    """Thread titles come with a JSON schema in `text.format`; anything else gets words."""
    fmt = (body.get("text") or {}).get("format") or {}
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return schema_answer(fmt.get("schema"))
    return "Fake session"


def _summary(turn: Turn) -> str:
    last = one_line(turn.prompt or "", 100)
    return f"{SUMMARY_MARKER}: {turn.history_prompts} prompt(s) so far; last: {last}"
