"""The Block Kit messages for an agent's question or approval, and their answered form.

A question shows each option as its own section (label in bold, the option's description
under it) with a *Choose* button, because a bare button cannot show a description; a
multi-select question is a checkbox group (descriptions included) with a *Submit* button.
Every question also has *Other…*, which opens a modal for a free-text answer. An approval
shows the command and its buttons: Allow once, Always allow this session (only when the runtime
has a rule that allows exactly this command: :attr:`runtimes.asks.Ask.session_rule`), Deny, Deny
with a reason… (a modal). Once answered, the message is rewritten without any buttons, saying who
chose what.

Every element's ``action_id`` starts with ``q:<ask id>:`` (see :func:`parse_action`), so the
channel side can route clicks by prefix and a click always names the row it answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bridge.render.redact import redact
from runtimes.asks import Ask, Question

PREFIX = "q:"
Block = dict[str, Any]


def esc(text: str) -> str:
    """Slack mrkdwn escaping: only ``&``, ``<`` and ``>`` are special."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters. A long text is redacted before it is cut: a cut
    through a token leaves a prefix no pattern knows, which the outbound chokepoint
    (:mod:`bridge.chat.redacting`) could no longer recognise."""
    if len(text) <= limit:
        return text
    text = redact(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(text: str, limit: int = 75) -> dict[str, Any]:
    return {"type": "plain_text", "text": _cut(text, limit) or " ", "emoji": True}


def _md(text: str, limit: int = 3000) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _cut(text, limit) or " "}


def _button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "text": _plain(text),
        "action_id": action_id,
        "value": _cut(value, 2000),
    }
    if style:
        button["style"] = style
    return button


@dataclass(frozen=True, slots=True)
class Click:
    """A parsed ``action_id``: which ask, what was used, on which question/option."""

    ask_id: int
    op: str
    question: int = 0
    option: int = 0


def parse_action(action_id: str) -> Click | None:
    """``q:<id>:<op>[:<question>[:<option>]]`` -> :class:`Click`; None if not ours."""
    if not action_id.startswith(PREFIX):
        return None
    parts = action_id[len(PREFIX) :].split(":")
    try:
        numbers = [int(p) for p in parts[2:4]]
        return Click(int(parts[0]), parts[1], *numbers)
    except (ValueError, IndexError):
        return None


def _question_title(q: Question, index: int, total: int) -> str:
    head = f"*{esc(q.header)}*" if q.header else (f"*Question {index + 1}*" if total > 1 else "")
    return f"{head}\n{esc(q.text)}" if head else f"*{esc(q.text)}*"


def question_blocks(slug: str, ask_id: int, ask: Ask) -> list[Block]:
    blocks: list[Block] = [
        {"type": "section", "text": _md(f":question: *{esc(slug)}* asks:")},
    ]
    total = len(ask.questions)
    for qi, q in enumerate(ask.questions):
        blocks.append({"type": "section", "text": _md(_question_title(q, qi, total))})
        other = _button("Other…", f"{PREFIX}{ask_id}:other:{qi}", "other")
        if q.multi:
            boxes: Block = {
                "type": "checkboxes",
                "action_id": f"{PREFIX}{ask_id}:chk:{qi}",
                "options": [
                    {
                        "text": _plain(o.label),
                        **({"description": _plain(o.description)} if o.description else {}),
                        "value": str(oi),
                    }
                    for oi, o in enumerate(q.options[:10])
                ],
            }
            submit = _button("Submit", f"{PREFIX}{ask_id}:submit:{qi}", "submit", "primary")
            blocks.append({"type": "actions", "elements": [boxes, submit, other]})
            continue
        for oi, o in enumerate(q.options):
            text = f"*{esc(o.label)}*" + (f"\n{esc(o.description)}" if o.description else "")
            blocks.append(
                {
                    "type": "section",
                    "text": _md(text),
                    "accessory": _button("Choose", f"{PREFIX}{ask_id}:opt:{qi}:{oi}", o.label),
                }
            )
        blocks.append({"type": "actions", "elements": [other]})
    return blocks


def approval_blocks(slug: str, ask_id: int, ask: Ask) -> list[Block]:
    what = f":lock: *{esc(slug)}* wants to run:\n```{esc(_cut(ask.command, 2500))}```"
    if ask.reason and ask.reason != ask.command:
        what += f"\n_{esc(_cut(ask.reason, 300))}_"
    elements = [_button("Allow once", f"{PREFIX}{ask_id}:allow", "allow", "primary")]
    if ask.session_rule is not None:  # only a rule that allows exactly this command
        elements.append(
            _button("Always allow this session", f"{PREFIX}{ask_id}:session", "session")
        )
    elements += [
        _button("Deny", f"{PREFIX}{ask_id}:deny", "deny", "danger"),
        _button("Deny with a reason…", f"{PREFIX}{ask_id}:denywhy", "denywhy"),
    ]
    return [{"type": "section", "text": _md(what)}, {"type": "actions", "elements": elements}]


def ask_blocks(slug: str, ask_id: int, ask: Ask) -> list[Block]:
    if ask.kind == "question":
        return question_blocks(slug, ask_id, ask)
    return approval_blocks(slug, ask_id, ask)


def fallback_text(slug: str, ask: Ask) -> str:
    """The notification text (and what a backend without blocks shows)."""
    if ask.kind == "approval":
        return f"{slug} wants to run `{_cut(ask.command, 300)}`: allow or deny?"
    first = ask.questions[0] if ask.questions else None
    options = " / ".join(o.label for o in first.options) if first else ""
    return f"{slug} asks: {first.text if first else ''} ({options})"


def closed_blocks(slug: str, ask: Ask, outcome: str) -> list[Block]:
    """The message after the fact: what was asked, then ``outcome``; no buttons."""
    if ask.kind == "approval":
        head = f":lock: *{esc(slug)}* wanted to run:\n```{esc(_cut(ask.command, 2500))}```"
        blocks: list[Block] = [{"type": "section", "text": _md(head)}]
    else:
        blocks = [{"type": "section", "text": _md(f":question: *{esc(slug)}* asked:")}]
        total = len(ask.questions)
        blocks += [
            {"type": "section", "text": _md(_question_title(q, i, total))}
            for i, q in enumerate(ask.questions)
        ]
    blocks.append({"type": "context", "elements": [_md(outcome, 2000)]})
    return blocks


def modal(callback_id: str, title: str, label: str, metadata: str, optional: bool) -> Block:
    """A one-field modal (a free-text answer, a deny reason)."""
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": metadata,
        "title": _plain(title, 24),
        "submit": _plain("Send", 24),
        "close": _plain("Cancel", 24),
        "blocks": [
            {
                "type": "input",
                "block_id": "answer",
                "optional": optional,
                "label": _plain(label, 2000),
                "element": {"type": "plain_text_input", "action_id": "text", "multiline": True},
            }
        ],
    }


def describe_choice(ask: Ask, answers: Sequence[tuple[str, str]]) -> str:
    """``"Which color?" → blue`` lines for the answered message and the audit."""
    return "; ".join(f"{q} → {a}" for q, a in answers) if answers else ""
