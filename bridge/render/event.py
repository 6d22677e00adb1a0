"""Turning one transcript event into a Slack-ready message.

Pure (no I/O, no clock): the mirror's output is reproducible from a transcript. Every rendered
text goes through :func:`bridge.render.redact.redact`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge.render.markdown import FENCE, code_text, escape_mrkdwn, gfm_to_mrkdwn
from bridge.render.redact import redact
from bridge.render.tools import shorten_output, tool_one_liner
from runtimes.events import Event, EventKind

_TERMINAL_NOISE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]"
)


@dataclass(frozen=True)
class Rendered:
    """A message ready to post: mrkdwn text, or (``as_file``) a file's content and name."""

    text: str
    as_file: bool = False
    filename: str | None = None


def _clean_output(text: str) -> str:
    """Terminal output as a reader saw it: no colour codes or control characters, and progress
    lines (rewritten with ``\\r``) collapsed to their last state."""
    lines = text.replace("\r\n", "\n").split("\n")
    return _TERMINAL_NOISE.sub("", "\n".join(line.rsplit("\r", 1)[-1] for line in lines))


def _redact_value(value: Any) -> Any:
    """Redact every string in a tool input before clipping (a cut token would not match)."""
    if isinstance(value, Mapping):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return redact(value) if isinstance(value, str) else value


_FILE_NAMES = {EventKind.USER_PROMPT: "prompt.md", EventKind.ASSISTANT_TEXT: "reply.md"}
_FILE_NAMES |= {EventKind.THINKING: "thinking.md", EventKind.TOOL_RESULT: "output.txt"}


def render_event(
    event: Event, *, show_thinking: bool = False, file_threshold: int = 12000
) -> Rendered | None:
    """How one event appears in Slack, or None for signals and hidden or empty content.

    Secrets are redacted from the raw text (unformatted, unclipped) and again from the result."""
    kind = event.kind
    if kind is EventKind.TOOL_CALL:
        args = _redact_value(dict(event.tool_input or {}))
        line = redact(tool_one_liner(event.tool, args, event.meta)).replace("`", "ˋ")
        return Rendered(redact(f"`{escape_mrkdwn(line)}`"))
    if kind is EventKind.COMPACTION:
        return Rendered(":compression: _Context compacted_")
    if kind not in _FILE_NAMES or (kind is EventKind.THINKING and not show_thinking):
        return None
    is_output = kind is EventKind.TOOL_RESULT
    raw = redact(_clean_output(event.text).strip("\n") if is_output else event.text.strip())
    if not raw and not (is_output and event.is_error):
        return None
    if len(raw) > file_threshold:
        return Rendered(raw, as_file=True, filename=_FILE_NAMES[kind])
    if is_output:
        body = f"{FENCE}\n{code_text(shorten_output(raw))}\n{FENCE}" if raw else ""
        text = "\n".join(part for part in (":x: Error" if event.is_error else "", body) if part)
    elif kind is EventKind.THINKING:
        quoted = "\n".join(f"> {code_text(line)}".rstrip() for line in raw.split("\n"))
        text = f":thought_balloon: _thinking_\n{quoted}"
    else:
        text = gfm_to_mrkdwn(raw)
        if kind is EventKind.USER_PROMPT:
            text = ":bust_in_silhouette:" + ("\n" if "\n" in text else " ") + text
    return Rendered(redact(text))
