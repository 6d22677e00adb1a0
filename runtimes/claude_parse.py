"""Claude Code transcript lines (``projects/<dir>/<session>.jsonl``) to common events.

Verified against Claude Code 2.1.328 (``fixtures/claude-2.1.328``); see FORMATS.md. The parser is
stateless per line: every id is derived from the line alone, so a tailer resuming at a stored
byte offset produces the same ids and the ledger can dedupe.

Mapping (judgement calls marked *):

- Only ``type`` user / assistant / system lines count; bookkeeping types yield nothing.
- * Sidechain lines (``isSidechain: true``, subagent traffic) yield nothing at all: their
  "user" lines are the parent's instructions to the subagent (not a human), their usage is the
  subagent's own context, and the parent's Task ``tool_use``/``tool_result`` already tells the
  story in the mirror.
- ``assistant``: one line per content block, repeating ``message.id``; block ids are
  ``<message.id>:<tool_use id>`` or ``<message.id>:<type>:<sha1(text)[:12]>``, so a block
  written twice dedupes. Empty text / thinking blocks (redacted thinking) are skipped. Each
  line with usage also gives ``CONTEXT_SIZE`` ``ctx:<message.id>`` (same id for every block of
  one response). * Usage summing to 0 (Claude's synthetic API-error messages) gives no
  CONTEXT_SIZE, and ``isApiErrorMessage`` marks the text ``is_error``. Such a record with
  ``error: rate_limit`` (or ``apiErrorStatus: 429``) also gives ``USAGE_LIMIT``
  ``limit:<uuid>``: Claude gave up at the account's usage limit (it names no reset time).
- ``user``: a human prompt gives ``TURN_START`` ``turn:<uuid>`` then ``USER_PROMPT`` ``<uuid>``
  (``meta.prompt_id`` matches the hooks' ``prompt_id``). ``isMeta``, ``isCompactSummary`` and
  slash-command wrappers give nothing. * Slash commands emit no signal either: the runner sends
  ``/compact`` itself, and its effect arrives as COMPACTION from ``compact_boundary``; a fake
  TURN_START would never see a TURN_END (local commands write no ``turn_duration``).
  * ``[Request interrupted by user...]`` gives ``TURN_END`` with ``meta.aborted`` (Claude writes
  no ``turn_duration`` for an interrupted turn). ``tool_result`` blocks give ``TOOL_RESULT``
  ``result:<tool_use_id>``.
- ``system``: ``compact_boundary`` gives ``COMPACTION`` ``compact:<uuid>`` and ``CONTEXT_SIZE``
  ``ctx:compact:<uuid>`` (postTokens); ``turn_duration`` gives ``TURN_END`` ``turn_end:<uuid>``.
- * ``TOOL_CALL.text`` is a one-line human summary of the input (the command, file, pattern...);
  ``tool_input`` carries the whole input.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from runtimes.asks import QUESTION_TOOL, asks_meta
from runtimes.events import Event, EventKind, LineResult
from runtimes.known_records import claude_unknown
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
    short_hash,
)

_log = logging.getLogger(__name__)

#: Markup Claude Code writes into ``user`` lines for things that are not human prompts.
WRAPPER_TAGS = frozenset(
    {
        "command-name",
        "command-message",
        "command-args",
        "command-contents",
        "local-command-stdout",
        "local-command-stderr",
        "local-command-caveat",
        "bash-input",
        "bash-stdout",
        "bash-stderr",
        "system-reminder",
        "task-notification",
        "user-memory-input",
        "user-prompt-submit-hook",
    }
)

_INTERRUPTED = "[Request interrupted by user"

#: Input keys that best summarise a tool call in one line, most telling first.
_SUMMARY_KEYS = (
    "command",
    "file_path",
    "notebook_path",
    "pattern",
    "path",
    "url",
    "query",
    "description",
    "prompt",
)


def parse_claude_line(line: bytes, offset: int, source: str) -> LineResult:
    """Turn one Claude Code transcript line into events; never raises."""
    return guarded_parse(line, offset, source, _parse_record, _log, classify=claude_unknown)


def _parse_record(obj: JsonObject, offset: int, source: str) -> Iterator[Event]:
    kind = obj.get("type")
    if kind not in ("user", "assistant", "system") or obj.get("isSidechain") is True:
        return
    # Fallback when a record lacks its uuid: still a pure function of the line's position.
    uuid = as_str(obj.get("uuid")) or f"{source}:L{offset}"
    if kind == "assistant":
        yield from _assistant(obj, uuid)
    elif kind == "user":
        yield from _user(obj, uuid)
    else:
        yield from _system(obj, uuid)


def _assistant(obj: JsonObject, uuid: str) -> Iterator[Event]:
    message = as_dict(obj.get("message")) or {}
    message_id = as_str(message.get("id")) or uuid
    is_error = obj.get("isApiErrorMessage") is True
    content = message.get("content")
    blocks: list[Any] = [{"type": "text", "text": content}] if isinstance(content, str) else []
    blocks += as_list(content) or []
    for raw in blocks:
        block = as_dict(raw)
        if block is None:
            continue
        btype = block.get("type")
        if btype == "tool_use":
            call_id = nonempty(block.get("id"))
            if call_id is None:
                continue
            tool_input = as_dict(block.get("input"))
            name = as_str(block.get("name")) or "?"
            yield Event(
                EventKind.TOOL_CALL,
                f"{message_id}:{call_id}",
                text=_summarise(tool_input),
                tool=name,
                tool_input=tool_input,
                call_id=call_id,
                meta=asks_meta(tool_input) if name == QUESTION_TOOL else {},
            )
        elif btype in ("text", "thinking"):
            text = nonempty(block.get(btype))
            if text is None:
                continue
            yield Event(
                EventKind.ASSISTANT_TEXT if btype == "text" else EventKind.THINKING,
                f"{message_id}:{btype}:{short_hash(text)}",
                text=text,
                is_error=is_error and btype == "text",
            )
    if is_error and (obj.get("error") == "rate_limit" or as_int(obj.get("apiErrorStatus")) == 429):
        yield Event(EventKind.USAGE_LIMIT, f"limit:{uuid}", text=_first_text(blocks))
    usage = as_dict(message.get("usage"))
    if usage is not None:
        tokens = sum(
            as_int(usage.get(key)) or 0
            for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        )
        if tokens > 0:
            yield Event(EventKind.CONTEXT_SIZE, f"ctx:{message_id}", tokens=tokens)


def _first_text(blocks: list[Any]) -> str:
    for raw in blocks:
        block = as_dict(raw)
        if block is not None and (text := nonempty(block.get("text"))) is not None:
            return text
    return ""


def _summarise(tool_input: JsonObject | None) -> str:
    for key in _SUMMARY_KEYS:
        value = nonempty((tool_input or {}).get(key))
        if value is not None:
            return value
    return ""


def _user(obj: JsonObject, uuid: str) -> Iterator[Event]:
    if obj.get("isMeta") is True or obj.get("isCompactSummary") is True:
        return
    message = as_dict(obj.get("message")) or {}
    content = message.get("content")
    blocks = [b for b in as_list(content) or () if isinstance(b, dict)]
    results = [b for b in blocks if b.get("type") == "tool_result"]
    for block in results:
        call_id = nonempty(block.get("tool_use_id"))
        if call_id is None:
            continue
        yield Event(
            EventKind.TOOL_RESULT,
            f"result:{call_id}",
            text=joined_text(block.get("content"), image_marker="[image]"),
            call_id=call_id,
            is_error=block.get("is_error") is True,
        )
    if results:
        # Text blocks riding along with tool results are harness notes, not prompts.
        return
    texts = [content] if isinstance(content, str) else block_texts(blocks, image_marker="[image]")
    texts = [t for t in texts if t.strip() and not is_injected_wrapper(t, WRAPPER_TAGS)]
    if not texts:
        return
    if any(t.lstrip().startswith(_INTERRUPTED) for t in texts):
        yield Event(EventKind.TURN_END, f"turn_end:{uuid}", meta={"aborted": True})
        return
    meta = present(
        prompt_id=as_str(obj.get("promptId")),
        origin=as_str((as_dict(obj.get("origin")) or {}).get("kind")),
    )
    yield Event(EventKind.TURN_START, f"turn:{uuid}", meta=dict(meta))
    yield Event(EventKind.USER_PROMPT, uuid, text="\n".join(texts), meta=meta)


def _system(obj: JsonObject, uuid: str) -> Iterator[Event]:
    subtype = obj.get("subtype")
    if subtype == "compact_boundary":
        info = as_dict(obj.get("compactMetadata")) or {}
        trigger = as_str(info.get("trigger"))
        pre = as_int(info.get("preTokens"))
        post = as_int(info.get("postTokens"))
        details = [trigger] if trigger else []
        if pre is not None and post is not None:
            details.append(f"{pre} → {post} tokens")
        text = "Conversation compacted" + (f" ({', '.join(details)})" if details else "")
        meta = {"trigger": trigger, "pre_tokens": pre, "post_tokens": post}
        yield Event(EventKind.COMPACTION, f"compact:{uuid}", text=text, meta=meta)
        if post is not None:
            yield Event(EventKind.CONTEXT_SIZE, f"ctx:compact:{uuid}", tokens=post)
    elif subtype == "turn_duration":
        meta = present(
            duration_ms=as_int(obj.get("durationMs")),
            message_count=as_int(obj.get("messageCount")),
        )
        yield Event(EventKind.TURN_END, f"turn_end:{uuid}", meta=meta)
