"""Per-agent settings for what an agent asks people: approvals and the no-answer policy.

Kept out of :mod:`bridge.config.model` (which must stay small) as a base class of
``AgentConfig``, so the keys sit directly on an agent (``permissions: ask``). Descriptions are
``Field(description=...)`` because ``docs/gen_configuration.py`` reads attribute docstrings
from ``model.py`` only.

Choices where the issue is silent: an approval nobody answers is always *denied* on timeout
(failing closed), whatever ``on_timeout`` says; ``default_answer: first`` picks each question's
first option, any other text is given to the model as the person's free-text answer.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

PermissionMode = Literal["default", "acceptEdits", "plan", "auto", "dontAsk"]


def _dict_if_none(value: Any) -> Any:
    return {} if value is None else value


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class AnswerPolicy(_Model):
    """What happens when nobody answers an agent's question or approval request."""

    timeout_minutes: float | None = Field(
        default=None,
        gt=0,
        description="Give up waiting after this long; empty (the default) waits for a person.",
    )
    remind_after_minutes: float | None = Field(
        default=30.0,
        gt=0,
        description="Post one reminder in the question's thread after this long; empty: never.",
    )
    on_timeout: Literal["refuse", "default"] = Field(
        default="refuse",
        description=(
            "On timeout, `refuse` tells the model nobody answered (it goes on by itself); "
            "`default` answers questions with `default_answer`. Approvals are always denied."
        ),
    )
    default_answer: str = Field(
        default="first",
        min_length=1,
        description=(
            "The answer `on_timeout: default` gives: `first` picks each question's first "
            "option; any other text is given as a free-text answer."
        ),
    )

    via: Literal["hook", "pane"] = Field(
        default="hook",
        description=(
            "How Claude's question reaches the runner: `hook` (the blocking hook; the pane is "
            "the fallback when no hook answers) or `pane` (no question hook: the picker is read "
            "off the screen and answered with keys), for a CLI whose hooks do not work."
        ),
    )
    pane_after_seconds: float = Field(
        default=3.0,
        gt=0,
        description=(
            "Fallback: how long a question may wait with no hook connected before the runner "
            "reads the picker off the pane and posts it (docs/questions.md)."
        ),
    )

    def wait_seconds(self) -> float | None:
        return self.timeout_minutes * 60 if self.timeout_minutes is not None else None


class AskSettings(_Model):
    """The ask-related keys of one agent (a base of ``AgentConfig``)."""

    permissions: Literal["bypass", "ask"] = Field(
        default="bypass",
        description=(
            "`bypass`: the agent runs every command without asking (the CLIs' bypass flags). "
            "`ask`: commands the CLI would ask about are posted to the channel with "
            "Allow once / Always allow this session / Deny buttons (docs/questions.md)."
        ),
    )
    permission_mode: PermissionMode = Field(
        default="default",
        description="Claude's `--permission-mode` under `permissions: ask` (Codex ignores it).",
    )
    answers: Annotated[AnswerPolicy, BeforeValidator(_dict_if_none)] = Field(
        default_factory=AnswerPolicy,
        description="When nobody answers a question or an approval: see `agents[].answers`.",
    )

    def ask_spec(self) -> dict[str, Any]:
        """What of these settings shapes the launched process (hashed into ``spec_hash``)."""
        spec: dict[str, Any] = {
            "permissions": self.permissions,
            "permission_mode": self.permission_mode,
            "ask_wait": self.answers.wait_seconds(),
        }
        if self.answers.via != "hook":  # only then: an unchanged agent keeps its spec hash
            spec["ask_via"] = self.answers.via
        return spec
