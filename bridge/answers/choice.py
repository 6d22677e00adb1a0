"""What a click on an ask's message means: pure translation, no I/O.

A button, a checkbox, a form submission each become one :data:`Choice`: an answer to commit
(:class:`Chosen`), a form to open (:class:`OpenForm`), a partial answer to store
(:class:`Partial`, a question with several parts, or a tick before Submit), a note for the
clicker (``str``) or nothing (``None``, not ours). :class:`~bridge.answers.service.Answers`
acts on it; keeping the meaning apart keeps that class to the I/O and makes every branch here
testable on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.answers.blocks import Click, esc
from bridge.answers.book import AskRow
from bridge.chat.protocol import Action
from runtimes.asks import Answer


@dataclass(frozen=True, slots=True)
class Chosen:
    answer: Answer
    said: str
    """How the message is rewritten: "allowed it once", "q → *a*"."""


@dataclass(frozen=True, slots=True)
class OpenForm:
    form: str
    question: int
    title: str
    label: str


@dataclass(frozen=True, slots=True)
class Partial:
    partial: dict[str, Any]


Choice = Chosen | OpenForm | Partial | str | None


def approval_choice(row: AskRow, click: Click, action: Action) -> Choice:
    user = action.user
    if click.op == "allow":
        return Chosen(Answer("allow"), "allowed it once")
    if click.op == "session":
        if row.ask.session_rule is None:  # never offered: no rule allows just this command
            return (
                "This command cannot be allowed for the whole session (no rule would allow "
                "exactly it); use Allow once or Deny."
            )
        return Chosen(Answer("allow_session"), "allowed it for this session")
    if click.op == "deny":
        return Chosen(Answer("deny", message=f"Denied from chat by {user}."), "denied it")
    if click.op == "denywhy":
        return OpenForm("denyform", 0, "Deny", "Why not?")
    if click.op == "denyform":
        reason = action.form.get("answer.text", "").strip()
        message = f"Denied from chat by {user}" + (f": {reason}" if reason else ".")
        return Chosen(
            Answer("deny", message=message), "denied it" + (f": {reason}" if reason else "")
        )
    return None


def question_choice(row: AskRow, click: Click, action: Action) -> Choice:
    questions = row.ask.questions
    if not 0 <= click.question < len(questions):
        return None
    q = questions[click.question]
    partial = dict(row.partial)
    qkey = str(click.question)
    if click.op == "opt" and 0 <= click.option < len(q.options):
        partial[qkey] = q.options[click.option].label
    elif click.op == "chk":
        partial[f"chk:{qkey}"] = [int(v) for v in action.values if v.isdigit()]
        return Partial(partial)
    elif click.op == "submit":
        ticked = [i for i in partial.get(f"chk:{qkey}", []) if 0 <= i < len(q.options)]
        if not ticked:
            return "Tick at least one option first (or use Other… to write an answer)."
        partial[qkey] = ", ".join(q.options[i].label for i in sorted(ticked))
    elif click.op == "other":
        return OpenForm("otherform", click.question, "Your answer", q.text)
    elif click.op == "otherform":
        text = action.form.get("answer.text", "").strip()
        if not text:
            return None
        partial[qkey] = text
    else:
        return None
    if any(str(i) not in partial for i in range(len(questions))):
        return Partial(partial)
    answers = {questions[i].text: str(partial[str(i)]) for i in range(len(questions))}
    said = "; ".join(f"{esc(k)} → *{esc(v)}*" for k, v in answers.items())
    return Chosen(Answer("answers", answers), said)
