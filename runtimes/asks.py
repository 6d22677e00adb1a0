"""What an agent asks a person, and the hook answers that carry the person's reply back.

Two kinds of asks reach the runner through a *blocking* hook (the only hooks that may hold the
agent up, because a person's answer is what the agent waits for anyway):

- a **question**: Claude's ``AskUserQuestion`` tool, seen by a ``PreToolUse`` hook; the hook
  answers with ``updatedInput`` carrying ``answers`` (question text -> chosen label, several
  labels joined with ``", "``, or free text), exactly what the picker itself would produce;
- an **approval**: a ``PermissionRequest`` hook (Claude without ``--dangerously-skip-permissions``,
  Codex with ``approval_policy="on-request"``), answered with ``decision.behavior`` allow / deny,
  and for "always allow this session" an ``updatedPermissions`` rule.

The shapes were verified on the real binaries (docs/cli-signals.md sections c and d). Both CLIs
use the same ``PermissionRequest`` output, so the builders here are shared; what differs per CLI
(which events, which tools) is decided in ``runtimes/claude.py`` and ``runtimes/codex.py``.
Nothing here imports ``bridge``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from runtimes.events import ASKS_META

AskKind = Literal["question", "approval"]
Verdict = Literal["answers", "allow", "allow_session", "deny", "refuse"]

QUESTION_TOOL = "AskUserQuestion"
WAIT_PREFIX = "wait:"
"""``agentbridge hook wait:<Event>``: the blocking form of the hook command."""
WAIT_FOREVER_S = 7 * 86400
"""The hook timeout when nobody configured one: a week stands for "wait"."""


@dataclass(frozen=True, slots=True)
class Option:
    label: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    header: str = ""
    options: tuple[Option, ...] = ()
    multi: bool = False


@dataclass(frozen=True, slots=True)
class Ask:
    """One thing an agent waits on a person for, parsed from a hook payload."""

    kind: AskKind
    key: str
    """Stable across a re-sent hook (the hook client reconnects to a restarted runner with the
    same payload): the tool_use_id, or a digest of the request when the CLI gives none."""
    event: str
    questions: tuple[Question, ...] = ()
    tool: str = ""
    command: str = ""
    """Approvals: the command (or the tool input, as JSON) the agent wants to run."""
    reason: str = ""
    tool_input: dict[str, Any] = field(default_factory=dict)
    session_rule: dict[str, Any] | None = None
    """Approvals: the permission rule "Always allow this session" installs, one that allows
    exactly :attr:`command` and nothing else; None when the runtime cannot express such a rule
    (then the button is not offered). Set by the runtime (``runtimes/claude.py``)."""
    request_id: str = ""
    """The hook client's id for this one request (``agentbridge hook wait:...`` mints it once
    and re-sends it on every reconnect): only a re-sent hook with the same id may be handed an
    answer given before; an identical command asked again is a new request."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A person's (or the timeout policy's) reply to an :class:`Ask`."""

    verdict: Verdict
    answers: dict[str, str] = field(default_factory=dict)
    """Questions: question text -> the answer text the model receives."""
    message: str = ""
    """A deny's or a refusal's reason (the model reads it)."""

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "answers": self.answers, "message": self.message}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Answer:
        answers = data.get("answers") or {}
        return Answer(
            verdict=data.get("verdict", "refuse"),
            answers={str(k): str(v) for k, v in answers.items()},
            message=str(data.get("message") or ""),
        )


def _digest(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def parse_questions(tool_input: dict[str, Any]) -> tuple[Question, ...]:
    out: list[Question] = []
    for q in tool_input.get("questions") or []:
        if not isinstance(q, dict) or not str(q.get("question") or "").strip():
            continue
        options = tuple(
            Option(str(o.get("label") or ""), str(o.get("description") or ""))
            for o in q.get("options") or []
            if isinstance(o, dict) and str(o.get("label") or "").strip()
        )
        out.append(
            Question(
                text=str(q["question"]),
                header=str(q.get("header") or ""),
                options=options,
                multi=bool(q.get("multiSelect")),
            )
        )
    return tuple(out)


def asks_meta(tool_input: dict[str, Any] | None) -> dict[str, Any]:
    """The ``meta`` marking a question tool call (``{"asks": [texts]}``), or {} when its input
    holds no readable question."""
    texts = [q.text for q in parse_questions(tool_input or {})]
    return {ASKS_META: texts} if texts else {}


def question_ask(event: str, payload: dict[str, Any]) -> Ask | None:
    """An ``AskUserQuestion`` call seen by a ``PreToolUse`` hook, or None."""
    tool_input = payload.get("tool_input")
    if payload.get("tool_name") != QUESTION_TOOL or not isinstance(tool_input, dict):
        return None
    questions = parse_questions(tool_input)
    if not questions:
        return None
    key = str(payload.get("tool_use_id") or "") or "q:" + _digest(
        payload.get("session_id"), payload.get("prompt_id"), tool_input
    )
    return Ask(
        "question", key, event, questions=questions, tool=QUESTION_TOOL, tool_input=tool_input
    )


def approval_ask(event: str, payload: dict[str, Any]) -> Ask | None:
    """A ``PermissionRequest`` for a tool other than the question tool, or None.

    The payload has no tool_use_id (both CLIs), so the key digests the session, the turn and
    the request itself: a re-sent hook finds its open ask again."""
    tool = str(payload.get("tool_name") or "")
    tool_input = payload.get("tool_input")
    if not tool or tool == QUESTION_TOOL or not isinstance(tool_input, dict):
        return None
    command = tool_input.get("command")
    if not isinstance(command, str):
        command = json.dumps(tool_input, sort_keys=True)[:2000]
    key = "p:" + _digest(
        payload.get("session_id"),
        payload.get("prompt_id") or payload.get("turn_id"),
        tool,
        tool_input,
    )
    reason = str(tool_input.get("description") or "")
    return Ask(
        "approval",
        key,
        event,
        tool=tool,
        command=command,
        reason=reason,
        tool_input=tool_input,
    )


def question_output(ask: Ask, answer: Answer) -> dict[str, Any]:
    """``PreToolUse`` stdout answering an ``AskUserQuestion`` (verified, cli-signals.md c)."""
    if answer.verdict != "answers":
        return {
            "hookSpecificOutput": {
                "hookEventName": ask.event,
                "permissionDecision": "deny",
                "permissionDecisionReason": answer.message or "The question was not answered.",
            }
        }
    return {
        "hookSpecificOutput": {
            "hookEventName": ask.event,
            "permissionDecision": "allow",
            "updatedInput": {**ask.tool_input, "answers": dict(answer.answers)},
        }
    }


def approval_output(ask: Ask, answer: Answer) -> dict[str, Any]:
    """``PermissionRequest`` stdout (the same shape for Claude and Codex, cli-signals.md d)."""
    decision: dict[str, Any]
    if answer.verdict == "allow":
        decision = {"behavior": "allow"}
    elif answer.verdict == "allow_session":
        rules = session_rules(ask)
        decision = {"behavior": "allow", **({"updatedPermissions": rules} if rules else {})}
    else:
        decision = {"behavior": "deny", "message": answer.message or "Denied."}
    return {"hookSpecificOutput": {"hookEventName": ask.event, "decision": decision}}


def session_rules(ask: Ask) -> list[dict[str, Any]]:
    """ "Always allow this session": the runtime's exact rule for this command
    (:attr:`Ask.session_rule`), kept to the session (verified on Claude: the same command later
    in the session runs without asking). Claude's own ``permission_suggestions`` (e.g. write
    access to the whole work tree) are deliberately not applied: the person allowed this
    command, not everything like it. Claude checks a compound command (``a; b``, a
    redirection) part by part, so a later identical compound command may still ask (seen on
    2.1.332). No rule: nothing is added (the caller refuses such a click before it gets here)."""
    if ask.session_rule is None:
        return []
    rule = dict(ask.session_rule)
    return [{"type": "addRules", "rules": [rule], "behavior": "allow", "destination": "session"}]


APPROVAL_EVENT = "PermissionRequest"
"""The blocking hook event that carries an approval (both CLIs): the one that must fail closed."""


def deny_output(event: str, message: str) -> dict[str, Any]:
    """The blocking hook's deny for ``event`` when there is no parsed ask to answer (the
    payload could not be read, or answering it failed): failing closed, the tool does not run.
    The same shapes as :func:`question_output` / :func:`approval_output` (cli-signals.md c, d)."""
    if event == APPROVAL_EVENT:
        decision = {"behavior": "deny", "message": message}
        return {"hookSpecificOutput": {"hookEventName": event, "decision": decision}}
    return {
        "hookSpecificOutput": {
            "hookEventName": event,
            "permissionDecision": "deny",
            "permissionDecisionReason": message,
        }
    }


def ask_output(ask: Ask, answer: Answer) -> dict[str, Any]:
    return question_output(ask, answer) if ask.kind == "question" else approval_output(ask, answer)


def hook_timeout(wait_seconds: float | None) -> int:
    """The blocking hook's timeout: the policy's wait plus a margin, or a week for "wait"."""
    if wait_seconds is None:
        return WAIT_FOREVER_S
    return int(wait_seconds) + 120
