"""Codex CLI rollout lines (``sessions/YYYY/MM/DD/rollout-*.jsonl``) to common events.

Verified against Codex 0.169.0 and 0.136.0 (``fixtures/codex-*``); see FORMATS.md. Stateless per
line: ids come from ids in the record, or from ``source`` + byte offset when the record has
none, so a resumed tailer reproduces them.

Codex records one thing several times, and the mirror must show it once:

- A command run is a ``function_call`` + ``function_call_output`` (every version), plus an
  ``item_completed`` ``CommandExecution`` (0.169) or ``exec_command_end`` (old). All of them map
  to ``tool:<call_id>`` / ``result:<call_id>``, so the ledger keeps the first and drops the
  rest. The outputs agree: the text after ``Output:`` equals ``aggregated_output``.
- Messages exist as ``response_item`` ``message`` (never mirrored: role user also carries the
  injected ``<environment_context>``; role assistant duplicates the events) and as events. Which
  event is authoritative depends on the thread's history mode, which every line reveals: a
  *paginated* rollout (0.169) stamps each envelope with ``ordinal``, a *legacy* one never does
  (codex-rs/rollout/src/ordinal.rs). Paginated files carry ``item_completed`` items; legacy files
  carry ``user_message`` / ``agent_message`` / ``agent_reasoning``, and some versions also keep
  the ``AgentMessage`` item next to them. * So items with text are mirrored only from lines with
  an ``ordinal`` and the legacy events only from lines without one; a file begun by an old Codex
  and resumed by a new one therefore mirrors each message exactly once.
- * Compaction is written as a ``compacted`` record in every version, plus a ``context_compacted``
  event (legacy) or a ``ContextCompaction`` item (paginated) that carry no id or data to pair
  with it. Only ``compacted`` gives COMPACTION; the others give nothing.
- * An ``error`` event gives an ``is_error`` ASSISTANT_TEXT (the model request failed and the turn
  ends with nothing else to show); transient ``stream_error`` / ``warning`` give nothing.
- ``token_count.rate_limits`` gives ``USAGE`` (or ``USAGE_LIMIT`` when a window is used up) and
  a ``task_complete`` whose error is ``usage_limit_exceeded`` gives ``USAGE_LIMIT`` before its
  ``TURN_END`` (see :mod:`runtimes.codex_signals`).
- * ``TOOL_CALL.text`` is a one-line human view of the call: the real command (without the
  ``bash -lc`` wrapper) or the patch text; ``tool_input`` carries the parsed arguments.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
from collections.abc import Callable, Iterator
from typing import Any

from runtimes.asks import asks_meta
from runtimes.codex_signals import rate_limit_event, task_error_event
from runtimes.events import Event, EventKind, LineResult
from runtimes.known_records import codex_unknown
from runtimes.parse_util import (
    JsonObject,
    as_dict,
    as_int,
    as_list,
    as_str,
    block_texts,
    guarded_parse,
    is_injected_wrapper,
    joined_text,
    nonempty,
    present,
)

QUESTION_TOOL = "request_user_input"
"""Codex's question tool: its calls are marked with :func:`runtimes.asks.asks_meta`."""

_log = logging.getLogger(__name__)

#: Openers of text Codex injects as if the user had said it.
INJECTED_TAGS = frozenset(
    {
        "environment_context",
        "user_instructions",
        "turn_aborted",
        "user_shell_command",
        "subagent_notification",
        "permissions instructions",
        "INSTRUCTIONS",
    }
)
_AGENTS_MD = "# AGENTS.md instructions for "

_SHELLS = frozenset({"bash", "sh", "zsh", "dash"})
# Greedy ``.*`` then strip: a lazy group followed by ``\s*$`` goes quadratic on long blank runs.
_PATCH_FILE = re.compile(r"^\*\*\* (?:(?:Add|Update|Delete) File|Move to): (.*)$", re.M)
# Bounded digit runs: int() refuses more than 4300 digits, and a real code is short anyway.
_EXIT_CODE = re.compile(r"^Process exited with code (-?\d{1,12})[ \t]*$", re.M)
_RUNNING = re.compile(r"^Process running with session ID (\d{1,18})[ \t]*$", re.M)
_HEADER_MARKS = ("Chunk ID:", "Wall time:", "Process exited with code", "Process running with")


def parse_codex_line(line: bytes, offset: int, source: str) -> LineResult:
    """Turn one Codex rollout line into events; never raises."""
    return guarded_parse(line, offset, source, _parse_record, _log, classify=codex_unknown)


def _parse_record(obj: JsonObject, offset: int, source: str) -> Iterator[Event]:
    payload = as_dict(obj.get("payload"))
    if payload is None:
        return
    line_id = f"{source}:L{offset}"
    kind = obj.get("type")
    if kind == "event_msg":
        handler = _EVENT_HANDLERS.get(as_str(payload.get("type")) or "")
        if handler is not None:
            yield from handler(payload, line_id, as_int(obj.get("ordinal")) is not None)
    elif kind == "response_item":
        yield from _response_item(payload)
    elif kind == "compacted":
        meta = present(
            summary=nonempty(payload.get("message")),
            trigger=as_str(payload.get("trigger")),
            reason=as_str(payload.get("reason")),
        )
        text = "Conversation compacted" + (f" ({meta['trigger']})" if "trigger" in meta else "")
        yield Event(EventKind.COMPACTION, f"compact:{line_id}", text=text, meta=meta)


# --- event_msg ------------------------------------------------------------------------------
# Each handler takes (payload, line id, paginated) where ``paginated`` = the line has an ordinal.


def _item_completed(payload: JsonObject, line_id: str, paginated: bool) -> Iterator[Event]:
    item = as_dict(payload.get("item")) or {}
    item_id = nonempty(item.get("id"))
    itype = item.get("type")
    if item_id is None:
        return
    if itype == "CommandExecution":
        output = as_str(item.get("aggregated_output")) or ""
        yield from _command(item_id, item.get("command"), output, item)
    elif not paginated:
        return  # legacy rollouts mirror the legacy events instead (see module docstring)
    elif itype == "UserMessage":
        text = "\n".join(
            t for t in block_texts(item.get("content"), image_marker="[image]") if t.strip()
        )
        if text and not _is_injected(text):
            yield Event(EventKind.USER_PROMPT, f"user:{item_id}", text=text)
    elif itype == "AgentMessage":
        text = joined_text(item.get("content"))
        if text.strip():
            yield Event(EventKind.ASSISTANT_TEXT, f"msg:{item_id}", text=text, meta=_phase(item))
    elif itype == "Reasoning":
        for key in ("summary_text", "summary", "text"):
            text = "\n\n".join(t for t in block_texts(item.get(key)) if t.strip())
            if text:
                yield Event(EventKind.THINKING, f"reasoning:{item_id}", text=text)
                return


def _legacy_message(payload: JsonObject, line_id: str, paginated: bool) -> Iterator[Event]:
    """``user_message`` / ``agent_message`` / ``agent_reasoning``: legacy rollouts only."""
    ptype = payload.get("type")
    text = nonempty(payload.get("text" if ptype == "agent_reasoning" else "message"))
    if paginated or text is None:
        return
    if ptype == "agent_reasoning":
        yield Event(EventKind.THINKING, line_id, text=text)
    elif ptype == "agent_message":
        yield Event(EventKind.ASSISTANT_TEXT, line_id, text=text, meta=_phase(payload))
    else:
        msg_kind = as_str(payload.get("kind"))  # 0.2x-0.3x: plain | environment_context | ...
        if (msg_kind is not None and msg_kind != "plain") or _is_injected(text):
            return
        images = sum(len(as_list(payload.get(k)) or ()) for k in ("images", "local_images"))
        yield Event(EventKind.USER_PROMPT, line_id, text=text, meta=present(images=images or None))


def _exec_end(payload: JsonObject, line_id: str, paginated: bool) -> Iterator[Event]:
    call_id = nonempty(payload.get("call_id"))
    output = as_str(payload.get("aggregated_output"))
    if output is None:
        output = "".join(as_str(payload.get(k)) or "" for k in ("stdout", "stderr"))
    if call_id is not None:
        yield from _command(call_id, payload.get("command"), output, payload)


def _patch_end(payload: JsonObject, line_id: str, paginated: bool) -> Iterator[Event]:
    call_id = nonempty(payload.get("call_id"))
    text = as_str(payload.get("stdout")) or as_str(payload.get("stderr")) or ""
    if call_id is not None:
        failed = payload.get("success") is False
        yield Event(
            EventKind.TOOL_RESULT, f"result:{call_id}", text=text, call_id=call_id, is_error=failed
        )


def _turn(payload: JsonObject, line_id: str, paginated: bool) -> Iterator[Event]:
    turn = as_str(payload.get("turn_id")) or line_id
    ptype = payload.get("type")
    if ptype == "task_started":
        window = as_int(payload.get("model_context_window"))
        yield Event(EventKind.TURN_START, f"turn:{turn}:start", context_window=window)
    elif ptype == "turn_aborted":
        meta = {"aborted": True, "reason": as_str(payload.get("reason"))}
        yield Event(EventKind.TURN_END, f"turn:{turn}:end", meta=meta)
    else:
        if (limit := task_error_event(payload, line_id)) is not None:
            yield limit
        meta = present(
            last_agent_message=as_str(payload.get("last_agent_message")),
            duration_ms=as_int(payload.get("duration_ms")),
        )
        yield Event(EventKind.TURN_END, f"turn:{turn}:end", meta=meta)


def _token_count(payload: JsonObject, line_id: str, paginated: bool) -> Iterator[Event]:
    info = as_dict(payload.get("info")) or {}  # null before the first model response
    tokens = as_int((as_dict(info.get("last_token_usage")) or {}).get("total_tokens"))
    if tokens is not None:
        window = as_int(info.get("model_context_window"))
        yield Event(EventKind.CONTEXT_SIZE, f"ctx:{line_id}", tokens=tokens, context_window=window)
    if (usage := rate_limit_event(payload, line_id)) is not None:
        yield usage


def _error(payload: JsonObject, line_id: str, paginated: bool) -> Iterator[Event]:
    text = nonempty(payload.get("message"))
    if text is not None:
        yield Event(EventKind.ASSISTANT_TEXT, line_id, text=text, is_error=True)


_EVENT_HANDLERS: dict[str, Callable[[JsonObject, str, bool], Iterator[Event]]] = {
    "item_completed": _item_completed,
    "user_message": _legacy_message,
    "agent_message": _legacy_message,
    "agent_reasoning": _legacy_message,
    "exec_command_end": _exec_end,
    "patch_apply_end": _patch_end,
    "task_started": _turn,
    "task_complete": _turn,
    "turn_aborted": _turn,
    "token_count": _token_count,
    "error": _error,
}


# --- tools ----------------------------------------------------------------------------------


def _command(call_id: str, command: object, output: str, record: JsonObject) -> Iterator[Event]:
    """TOOL_CALL + TOOL_RESULT for one finished command, ids shared with its function_call."""
    cmd = _command_text(command)
    exit_code = as_int(record.get("exit_code"))
    failed = (exit_code or 0) != 0 or record.get("status") in ("failed", "declined")
    yield Event(
        EventKind.TOOL_CALL,
        f"tool:{call_id}",
        text=cmd,
        tool="exec_command",
        tool_input={"cmd": cmd},
        call_id=call_id,
    )
    yield Event(
        EventKind.TOOL_RESULT,
        f"result:{call_id}",
        text=output,
        call_id=call_id,
        is_error=failed,
        meta=present(exit_code=exit_code),
    )


def _command_text(command: object) -> str:
    """The command as the agent meant it: ``["/bin/bash", "-lc", "ls"]`` reads ``ls``."""
    if isinstance(command, str):
        return command
    argv = [a for a in as_list(command) or () if isinstance(a, str)]
    if len(argv) == 3 and os.path.basename(argv[0]) in _SHELLS and argv[1] in ("-lc", "-c"):
        return argv[2]
    return shlex.join(argv)


def _response_item(payload: JsonObject) -> Iterator[Event]:
    ptype = payload.get("type")
    call_id = nonempty(payload.get("call_id"))
    if call_id is None:
        return  # ``message`` and ``reasoning`` land here too: never mirrored
    tool_id = f"tool:{call_id}"
    if ptype == "function_call":
        name = as_str(payload.get("name")) or "?"
        raw = as_str(payload.get("arguments")) or ""
        args = _json_object(raw)
        tool_input = args if args is not None else {"arguments": raw}
        if name == "apply_patch":  # the pre-freeform flavour: arguments {"input": patch}
            yield _patch_call(call_id, name, as_str(tool_input.get("input")) or "", tool_input)
            return
        cmd = tool_input.get("cmd", tool_input.get("command"))  # exec_command | old shell
        text = _command_text(cmd) if cmd is not None else raw
        yield Event(
            EventKind.TOOL_CALL,
            tool_id,
            text=text,
            tool=name,
            tool_input=tool_input,
            call_id=call_id,
            meta=asks_meta(tool_input) if name == QUESTION_TOOL else {},
        )
    elif ptype == "custom_tool_call":
        patch = as_str(payload.get("input")) or ""
        yield _patch_call(call_id, as_str(payload.get("name")) or "?", patch, {"input": patch})
    elif ptype == "local_shell_call":
        cmd = _command_text((as_dict(payload.get("action")) or {}).get("command"))
        yield Event(
            EventKind.TOOL_CALL,
            tool_id,
            text=cmd,
            tool="exec_command",
            tool_input={"cmd": cmd},
            call_id=call_id,
        )
    elif ptype in ("function_call_output", "custom_tool_call_output"):
        text, exit_code, failed, meta = _tool_output(payload.get("output"))
        meta.update(present(exit_code=exit_code))
        failed = failed or (exit_code or 0) != 0
        yield Event(
            EventKind.TOOL_RESULT,
            f"result:{call_id}",
            text=text,
            call_id=call_id,
            is_error=failed,
            meta=meta,
        )


def _patch_call(call_id: str, name: str, patch: str, tool_input: JsonObject) -> Event:
    """An apply_patch call; ``meta.files`` lists the paths it adds, updates, deletes or moves to."""
    files: dict[str, None] = {}  # ordered set
    for match in _PATCH_FILE.finditer(patch):
        if path := match.group(1).strip():
            files[path] = None
    meta = {"files": list(files)} if files else {}
    return Event(
        EventKind.TOOL_CALL,
        f"tool:{call_id}",
        text=patch,
        tool=name,
        tool_input=tool_input,
        call_id=call_id,
        meta=meta,
    )


def _tool_output(output: object) -> tuple[str, int | None, bool, dict[str, Any]]:
    """(text, exit code, failed, meta) from any of the output shapes Codex has written.

    Shapes: a plain string; the unified-exec header (``Process exited with code N`` ...
    ``Output:\\n<text>``); a JSON string ``{"output", "metadata": {"exit_code"}}`` (older shell and
    apply_patch); an object ``{"content", "success"}``; a list of content items.
    """
    obj = as_dict(output)
    if obj is None and isinstance(output, str) and output.startswith("{"):
        obj = _json_object(output)
        if obj is not None and as_str(obj.get("output")) is None:
            obj = None  # some other JSON the tool printed: show it verbatim
    if obj is not None:
        text = as_str(obj.get("output"))
        text = joined_text(obj.get("content")) if text is None else text
        exit_code = as_int((as_dict(obj.get("metadata")) or {}).get("exit_code"))
        return text, exit_code, obj.get("success") is False, {}
    if not isinstance(output, str):
        return joined_text(output), None, False, {}
    head, sep, body = output.partition("Output:\n")
    if not sep or not any(mark in head for mark in _HEADER_MARKS):
        return output, None, False, {}
    code = _EXIT_CODE.search(head)
    running = _RUNNING.search(head)  # exec_command yielded before the process ended
    meta = present(running_session=int(running.group(1)) if running else None)
    return body, int(code.group(1)) if code else None, False, meta


def _json_object(text: str) -> JsonObject | None:
    try:
        return as_dict(json.loads(text))
    except (ValueError, RecursionError):
        return None


def _is_injected(text: str) -> bool:
    return text.lstrip().startswith(_AGENTS_MD) or is_injected_wrapper(text, INJECTED_TAGS)


def _phase(record: JsonObject) -> dict[str, Any]:
    return present(phase=as_str(record.get("phase")))
