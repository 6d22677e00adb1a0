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
from typing import Any

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


MESSAGE_TEXT_BUDGET = 12_000
"""All the texts of one message's blocks together. Slack refuses a message whose blocks hold
about 13,200 characters or more in all with ``msg_blocks_too_long``, a limit it does not
document (measured at 13,172 to 13,297: https://github.com/slackapi/bolt-js/issues/2509), even
when every block keeps its own limit; a question of many long options reaches it."""


def _text_slots(value: Any, out: list[tuple[dict[str, Any], int]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                out.append((value, len(item)))
            else:
                _text_slots(item, out)
    elif isinstance(value, list):
        for item in value:
            _text_slots(item, out)


def fit_total(
    blocks: list[dict[str, Any]], budget: int = MESSAGE_TEXT_BUDGET
) -> list[dict[str, Any]]:
    """``blocks`` with their longest texts cut (each saying so) until all of them together fit
    ``budget``: the shortest texts (labels, titles) stay whole, and every cut one keeps the
    same share (the largest cap ``C`` with ``sum(min(len, C)) <= budget``)."""
    slots: list[tuple[dict[str, Any], int]] = []
    _text_slots(blocks, slots)
    lengths = sorted(n for _, n in slots)
    if sum(lengths) <= budget:
        return blocks
    cap, used = 0, 0
    for i, n in enumerate(lengths):  # water-filling: the texts under the cap stay whole
        left = len(lengths) - i
        if used + n * left > budget:
            cap = (budget - used) // left
            break
        used += n
    for holder, n in slots:
        if n > cap:
            holder["text"] = cut(holder["text"], max(cap, 1)) or "…"
    return blocks
