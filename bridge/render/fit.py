"""Texts cut to fit Slack's limits, saying what was cut.

Slack refuses a Block Kit payload whose texts are over their limits (a section's text 3,000
characters, a button's 75, ...: https://docs.slack.dev/reference/block-kit/blocks/section-block
and the other block pages), and the texts the product shows come from models and panes of any
size. A cut text ends with a note of how much is missing, so nobody mistakes it for the whole.
A long text is redacted before it is cut: a cut through a token leaves a prefix no pattern knows,
which the outbound chokepoint (:mod:`bridge.chat.redacting`) could no longer recognise.
"""

from __future__ import annotations

import re

from bridge.render.redact import redact

_ENTITY_TAIL = re.compile(r"&[a-z]{0,4}$")
"""A cut through ``&amp;`` / ``&lt;`` / ``&gt;`` leaves a stub Slack would show as is."""


def _note(missing: int) -> str:
    return f"… ({missing:,} more characters)"


def cut(text: str, limit: int, note: bool = True) -> str:
    """``text`` within ``limit`` characters; a cut one ends with ``… (N more characters)``
    (or a bare ``…`` when ``note`` is off or the limit is too small for the note)."""
    if len(text) <= limit:
        return text
    text = redact(text)
    if len(text) <= limit:
        return text
    tail = _note(len(text))  # the longest the note can be
    if not note or len(tail) * 2 > limit:
        return _ENTITY_TAIL.sub("", text[: limit - 1]) + "…"
    kept = _ENTITY_TAIL.sub("", text[: limit - len(tail)])
    return kept + _note(len(text) - len(kept))


def cut_tail(text: str, limit: int) -> str:
    """The end of ``text`` within ``limit`` characters (a pane's last lines matter most),
    starting ``(N earlier characters) …`` when cut."""
    if len(text) <= limit:
        return text
    text = redact(text)
    if len(text) <= limit:
        return text
    head = f"({len(text):,} earlier characters) …\n"
    kept = text[len(text) - (limit - len(head)) :]
    return f"({len(text) - len(kept):,} earlier characters) …\n" + kept
