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

The blocks are built with ``slack_sdk.models``, whose validators encode Slack's limits (a build
past one raises ``SlackObjectFormationError`` instead of posting what Slack would refuse), and
every text from the model is cut to fit first, saying what was cut
(:mod:`bridge.render.fit`): a message stays valid at any size of question, option or command.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    CheckboxesElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bridge.render.fit import cut, fit_total
from runtimes.asks import Ask, Question

PREFIX = "q:"
Block = dict[str, Any]
MAX_BLOCKS = 50
"""A message's blocks (https://docs.slack.dev/reference/block-kit/blocks)."""
MAX_QUESTIONS = 16
"""Questions one message shows: each needs at least three blocks (title, an option, Other…)."""
CHECKBOXES = 10
"""https://docs.slack.dev/reference/block-kit/block-elements/checkboxes-element: ≤ 10 options."""


def esc(text: str) -> str:
    """Slack mrkdwn escaping: only ``&``, ``<`` and ``>`` are special."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, saying how much was cut (redacted first)."""
    return cut(text, limit)


def _code(text: str, limit: int) -> str:
    """``text`` as a mrkdwn code block within ``limit`` characters: escaped, then cut, so the
    closing fence survives (an escaped ``<`` is four characters; a fence inside would end it)."""
    return "```" + cut(esc(text.replace("```", "'''")), limit - 6) + "```"


def _plain(text: str, limit: int = 75) -> PlainTextObject:
    return PlainTextObject(text=_cut(text, limit) or " ", emoji=True)


def _md(text: str, limit: int = 3000) -> MarkdownTextObject:
    return MarkdownTextObject(text=_cut(text, limit) or " ")


def _button(text: str, action_id: str, value: str, style: str | None = None) -> ButtonElement:
    return ButtonElement(
        text=_plain(text), action_id=action_id, value=_cut(value, 2000), style=style
    )


def _section(text: str, accessory: ButtonElement | None = None) -> Block:
    return SectionBlock(text=_md(text), accessory=accessory).to_dict()


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


def _option_budget(questions: Sequence[Question]) -> list[int]:
    """How many options each question shows so the message keeps within :data:`MAX_BLOCKS`:
    a checkbox group is one block of at most ten; single-choice options take a block each,
    shared fairly among the questions that have them."""
    left = MAX_BLOCKS - 1 - 2 * len(questions)  # the intro; a title and an actions block each
    singles = sum(1 for q in questions if not q.multi)
    shown = []
    for q in questions:
        if q.multi:
            shown.append(min(len(q.options), CHECKBOXES))
            continue
        n = min(len(q.options), max(left // max(singles, 1), 0))
        shown.append(n)
        left -= n
        singles -= 1
    return shown


def _intro(text: str, questions: int, shown: int) -> str:
    more = f"\n_({questions - shown} more questions not shown)_" if questions > shown else ""
    return text + more


def question_blocks(slug: str, ask_id: int, ask: Ask) -> list[Block]:
    """The question message. Past Slack's limits, options and questions are left out and the
    message says so; *Other…* still takes any answer."""
    questions = ask.questions[:MAX_QUESTIONS]
    intro = _intro(f":question: *{esc(_cut(slug, 100))}* asks:", len(ask.questions), len(questions))
    blocks: list[Block] = [_section(intro)]
    total = len(questions)
    for qi, (q, n) in enumerate(zip(questions, _option_budget(questions), strict=True)):
        cut_options = len(q.options) - n
        more = f"\n_+{cut_options} more options: answer with Other…_" if cut_options else ""
        blocks.append(_section(_cut(_question_title(q, qi, total), 3000 - len(more)) + more))
        other = _button("Other…", f"{PREFIX}{ask_id}:other:{qi}", "other")
        if q.multi and n:
            boxes = CheckboxesElement(
                action_id=f"{PREFIX}{ask_id}:chk:{qi}",
                options=[
                    Option(
                        text=_plain(o.label),
                        value=str(oi),
                        description=_plain(o.description) if o.description else None,
                    )
                    for oi, o in enumerate(q.options[:n])
                ],
            )
            submit = _button("Submit", f"{PREFIX}{ask_id}:submit:{qi}", "submit", "primary")
            blocks.append(ActionsBlock(elements=[boxes, submit, other]).to_dict())
            continue
        for oi, o in enumerate([] if q.multi else q.options[:n]):
            text = f"*{_cut(esc(o.label), 500)}*" + (
                f"\n{esc(o.description)}" if o.description else ""
            )
            choose = _button("Choose", f"{PREFIX}{ask_id}:opt:{qi}:{oi}", o.label)
            blocks.append(_section(text, choose))
        blocks.append(ActionsBlock(elements=[other]).to_dict())
    return blocks


def approval_blocks(slug: str, ask_id: int, ask: Ask) -> list[Block]:
    what = f":lock: *{esc(_cut(slug, 100))}* wants to run:\n{_code(ask.command, 2500)}"
    if ask.reason and ask.reason != ask.command:
        what += f"\n_{_cut(esc(ask.reason), 300)}_"
    elements = [_button("Allow once", f"{PREFIX}{ask_id}:allow", "allow", "primary")]
    if ask.session_rule is not None:  # only a rule that allows exactly this command
        elements.append(
            _button("Always allow this session", f"{PREFIX}{ask_id}:session", "session")
        )
    elements += [
        _button("Deny", f"{PREFIX}{ask_id}:deny", "deny", "danger"),
        _button("Deny with a reason…", f"{PREFIX}{ask_id}:denywhy", "denywhy"),
    ]
    return [_section(what), ActionsBlock(elements=elements).to_dict()]


def ask_blocks(slug: str, ask_id: int, ask: Ask) -> list[Block]:
    """The ask's message, all of its texts within Slack's total (:func:`fit_total`)."""
    if ask.kind == "question":
        return fit_total(question_blocks(slug, ask_id, ask))
    return fit_total(approval_blocks(slug, ask_id, ask))


def fallback_text(slug: str, ask: Ask) -> str:
    """The notification text (and what a backend without blocks shows); Slack asks for a
    `text` under 4,000 characters (https://docs.slack.dev/reference/methods/chat.postMessage)."""
    if ask.kind == "approval":
        return f"{_cut(slug, 100)} wants to run `{_cut(ask.command, 300)}`: allow or deny?"
    first = ask.questions[0] if ask.questions else None
    options = " / ".join(o.label for o in first.options) if first else ""
    text = f"{_cut(first.text, 1000) if first else ''} ({_cut(options, 1000)})"
    return f"{_cut(slug, 100)} asks: {text}"


def closed_text(slug: str, ask: Ask, outcome: str) -> str:
    """The answered message's notification text: what was asked, then ``outcome`` (which can
    hold a typed answer of any length), within Slack's 4,000."""
    return f"{fallback_text(slug, ask)} {_cut(outcome, 1000)}"


def closed_blocks(slug: str, ask: Ask, outcome: str) -> list[Block]:
    """The message after the fact: what was asked, then ``outcome``; no buttons."""
    if ask.kind == "approval":
        head = f":lock: *{esc(_cut(slug, 100))}* wanted to run:\n{_code(ask.command, 2500)}"
        blocks: list[Block] = [_section(head)]
    else:
        shown = ask.questions[: MAX_BLOCKS - 2]
        intro = f":question: *{esc(_cut(slug, 100))}* asked:"
        blocks = [_section(_intro(intro, len(ask.questions), len(shown)))]
        blocks += [_section(_question_title(q, i, len(shown))) for i, q in enumerate(shown)]
    blocks.append(ContextBlock(elements=[_md(outcome, 2000)]).to_dict())
    return fit_total(blocks)


def modal(callback_id: str, title: str, label: str, metadata: str, optional: bool) -> Block:
    """A one-field modal (a free-text answer, a deny reason). ``metadata`` is the product's
    own short key, never cut: one over Slack's 3,000 characters fails here, not at Slack."""
    field = PlainTextInputElement(action_id="text", multiline=True)
    view = View(
        type="modal",
        callback_id=callback_id,
        private_metadata=metadata,
        title=_plain(title, 24),
        submit=_plain("Send", 24),
        close=_plain("Cancel", 24),
        blocks=[
            InputBlock(
                block_id="answer", optional=optional, label=_plain(label, 2000), element=field
            )
        ],
    )
    return view.to_dict()


def describe_choice(ask: Ask, answers: Sequence[tuple[str, str]]) -> str:
    """``"Which color?" → blue`` lines for the answered message and the audit."""
    return "; ".join(f"{q} → {a}" for q, a in answers) if answers else ""
