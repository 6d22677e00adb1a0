"""Texts cut to fit Slack's limits, saying what was cut.

Slack refuses a Block Kit payload whose texts are over their limits (a section's text 3,000
characters, a button's 75, ...: https://docs.slack.dev/reference/block-kit/blocks/section-block
and the other block pages), and the texts the product shows come from models and panes of any
size. A cut text ends with a note of how much is missing, so nobody mistakes it for the whole.
Every text is redacted before it is measured: a cut through a token leaves a prefix no pattern
knows, which the outbound chokepoint (:mod:`bridge.chat.redacting`) could no longer recognise,
and the chokepoint's redaction can lengthen a text (``password=x`` becomes
``password=[REDACTED]``), which would push one cut to fit back over its limit. Redaction is
idempotent, so the chokepoint's second pass changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bridge.render.redact import redact

_ENTITY_TAIL = re.compile(r"&[a-z]{0,4}$")
"""A cut through ``&amp;`` / ``&lt;`` / ``&gt;`` leaves a stub Slack would show as is."""


def _note(missing: int) -> str:
    return f"… ({missing:,} more characters)"


def _cut_once(text: str, limit: int, note: bool) -> str:
    tail = _note(len(text))  # the longest the note can be
    if not note or len(tail) * 2 > limit:
        return _ENTITY_TAIL.sub("", text[: max(limit - 1, 0)]) + "…"
    kept = _ENTITY_TAIL.sub("", text[: limit - len(tail)])
    return kept + _note(len(text) - len(kept))


def _settled(text: str, limit: int, cut_to: Callable[[int], str]) -> str:
    """``cut_to(budget)`` redacted, with the budget lowered until that fits ``limit``: a cut
    can end in ``password=`` and the note after it then reads as the password's value."""
    budget = limit
    while True:
        out = redact(cut_to(budget))
        if len(out) <= limit or budget <= 1:
            return out
        budget -= max(len(out) - limit, 1)


def cut(text: str, limit: int, note: bool = True) -> str:
    """``text`` (redacted) within ``limit`` characters; a cut one ends with
    ``… (N more characters)`` (or a bare ``…`` when ``note`` is off or the limit is too small
    for the note)."""
    text = redact(text)
    if len(text) <= limit:
        return text
    return _settled(text, limit, lambda budget: _cut_once(text, budget, note))


def cut_tail(text: str, limit: int) -> str:
    """The end of ``text`` (redacted) within ``limit`` characters (a pane's last lines matter
    most), starting ``(N earlier characters) …`` when cut."""
    text = redact(text)
    if len(text) <= limit:
        return text

    def tail(budget: int) -> str:
        head = f"({len(text):,} earlier characters) …\n"
        kept = text[len(text) - max(budget - len(head), 0) :]
        return f"({len(text) - len(kept):,} earlier characters) …\n" + kept

    return _settled(text, limit, tail)
