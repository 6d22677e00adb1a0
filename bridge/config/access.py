"""Who may do what to an agent from chat: the config keys and the ONE decision,
:func:`authorize`, that steering, answers, alert buttons, every ``/agent`` verb and
``/agent review`` ask (one rule per action in :data:`RULES`; docs/configuration.md shows them
as a table generated from it). ``doctor`` and ``status`` describe the same keys.

Agents run with bypass permissions, so whoever steers one runs shell commands as the runner's
user. The default is therefore closed: with no ``allowed_users`` for an agent (its own list plus
the top-level one), nobody steers it from Slack. ``access: channel-members`` (per agent or for
the fleet) is the explicit opt-in to the old open behaviour; a non-empty allowlist restricts
steering in either mode, so the opt-in only decides what an *empty* list means. Only a request
from the agent's own channel proves membership: a DM or another channel never does (a DM's
``/agent review`` was once judged as if it came from the template's channel). The console
backend (``agentbridge send``) is not chat: the local user owns the box and is never refused.

The keys live here as two small mixins of the models in :mod:`bridge.config.model` (which stays
under the 400-line module limit); their descriptions feed ``docs/configuration.md``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal, Protocol

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

AccessMode = Literal["allowlist", "channel-members"]
DEFAULT_SLASH_COMMANDS = ("/compact",)
CLOSED_HINT = (
    "add Slack user ids to `allowed_users` (for this agent or at the top of agents.yaml), "
    "or set `access: channel-members` to let anyone in the channel steer it"
)
_SLASH_RE = re.compile(r"/[A-Za-z0-9][A-Za-z0-9:_.-]*")
_USER_RE = re.compile(r"[UW][A-Z0-9]{2,}")


def _user_id(value: str) -> str:
    if not _USER_RE.fullmatch(value):
        raise ValueError(f"{value!r} must be a Slack user id like U0123456789")
    return value


def _slash_command(value: str) -> str:
    if not _SLASH_RE.fullmatch(value):
        raise ValueError(f"{value!r} must be a CLI command like /compact")
    return value


def _list_if_none(value: Any) -> Any:
    return [] if value is None else value


UserList = Annotated[list[Annotated[str, AfterValidator(_user_id)]], BeforeValidator(_list_if_none)]
SlashList = Annotated[
    list[Annotated[str, AfterValidator(_slash_command)]], BeforeValidator(_list_if_none)
]


class AgentAccess(BaseModel):
    """The per-agent access keys (mixed into ``AgentConfig``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    allowed_users: UserList = Field(
        default_factory=list,
        description=(
            "Slack user ids (`U…`, `W…`) allowed to steer this agent and run `/agent` on it, "
            "with the top-level `allowed_users`. With neither list, nobody can (see `access`)."
        ),
    )
    access: AccessMode | None = Field(
        default=None,
        description=(
            "What an empty allowlist means for this agent (unset: the top-level `access`). "
            "`allowlist`: nobody steers it from Slack until `allowed_users` names someone "
            "(the runner says so once in its channel). `channel-members`: anyone who can post "
            "in its channel steers it; the agent runs with bypass permissions, so that is "
            "anyone there running shell commands as the runner's user. A non-empty "
            "`allowed_users` restricts steering in either mode."
        ),
    )
    slash_commands: SlashList = Field(
        default_factory=lambda: list(DEFAULT_SLASH_COMMANDS),
        description=(
            "CLI commands (text starting with `/`) people may send from Slack. Any other "
            "message starting with `/` (`/model`, `/logout`, `/clear`...) is refused with a "
            "note and never reaches the agent; `[]` refuses them all."
        ),
    )


class FleetAccess(BaseModel):
    """The fleet-level access keys (mixed into ``Config``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    allowed_users: UserList = Field(
        default_factory=list,
        description=(
            "Slack user ids (`U…`, `W…`) allowed to steer every agent and run `/agent` on it, "
            "in addition to each agent's own `allowed_users`. An agent with no list anywhere "
            "cannot be steered from Slack unless its `access` is `channel-members`."
        ),
    )
    access: AccessMode = Field(
        default="allowlist",
        description=(
            "Default of every agent's `access`. `allowlist` fails closed: an agent with no "
            "`allowed_users` (its own or the top-level list) cannot be steered from Slack. "
            "`channel-members` lets anyone who can post in an agent's channel steer it, that is, "
            "run shell commands as the runner's user. Local `agentbridge send` is never "
            "restricted."
        ),
    )
    inbound_file_max_bytes: int = Field(
        default=20_000_000,
        ge=0,
        description=(
            "Largest Slack attachment downloaded into an agent's inbox "
            "(`<state dir>/inbox/<slug>/`, outside its work tree); a bigger one is skipped "
            "and the agent is told so. `0` downloads none."
        ),
    )


class _Agent(Protocol):
    @property
    def slug(self) -> str: ...

    @property
    def allowed_users(self) -> list[str]: ...

    @property
    def access(self) -> AccessMode | None: ...

    @property
    def slash_commands(self) -> list[str]: ...


class _Fleet(Protocol):
    @property
    def allowed_users(self) -> list[str]: ...

    @property
    def access(self) -> AccessMode: ...


def mode(fleet: _Fleet, agent: _Agent) -> AccessMode:
    return agent.access or fleet.access


def allowlist(fleet: _Fleet, agent: _Agent) -> frozenset[str]:
    """The agent's list plus the fleet's."""
    return frozenset(agent.allowed_users) | frozenset(fleet.allowed_users)


def is_closed(fleet: _Fleet, agent: _Agent) -> bool:
    """Nobody may steer this agent from chat (no list, and no opt-in to open steering)."""
    return not allowlist(fleet, agent) and mode(fleet, agent) == "allowlist"


class Act(StrEnum):
    """Everything a person can make the runner do to an agent from chat; each has its rule
    (and its description) in :data:`RULES`. A new button or verb gets a member here and a row
    there, never a check of its own."""

    STEER = "steer"
    ANSWER = "answer"
    ALERT = "alert"
    STATUS = "status"
    RESTART = "restart"
    STOP = "stop"
    COMPACT = "compact"
    SEND = "send"
    REVIEW = "review"


class Where(StrEnum):
    """Where the request came from, as seen from the target agent."""

    CHANNEL = "channel"
    """The agent's own channel, a thread there, or a modal that a click there opened for the
    same person (Slack sends modal submissions without a channel)."""
    OTHER = "other"
    """Another channel."""
    DM = "dm"
    """A direct message (or a modal with no trace of where it was opened)."""


ANYWHERE = frozenset(Where)
OWN_CHANNEL = frozenset({Where.CHANNEL})


@dataclass(frozen=True, slots=True)
class Rule:
    """Where an allowlisted user may do an action, and where ``access: channel-members``
    lets anyone (with no allowlist) do it: only a request from the agent's own channel proves
    membership, so the second is never wider than :data:`OWN_CHANNEL`."""

    doc: str
    """What the action is (the first column of the table in docs/configuration.md)."""
    listed: frozenset[Where]
    members: frozenset[Where] = OWN_CHANNEL
    what: str = "control"
    """The verb of a refusal ("Sorry, you are not allowed to <what> `slug`")."""


RULES: Mapping[Act, Rule] = {
    # A steering message only ever comes from the agent's channel; alert buttons are only
    # ever on a message there (a click elsewhere is on someone else's button).
    Act.STEER: Rule(
        "a message in the agent's channel (or a thread there), pasted as a prompt",
        OWN_CHANNEL,
        what="steer",
    ),
    Act.ALERT: Rule(
        "a stuck-turn alert's buttons (Interrupt, Interrupt and continue, Restart, Ignore)",
        OWN_CHANNEL,
    ),
    # An allowlisted person may answer from a modal whose origin this runner forgot (a
    # restart between the click and the submission); anyone else needs the channel.
    Act.ANSWER: Rule(
        "a click or modal answering the agent's question or approval request",
        ANYWHERE,
        what="answer",
    ),
    Act.STATUS: Rule("being listed by `/agent status`", ANYWHERE, what="see"),
    Act.RESTART: Rule("`/agent restart SLUG`", ANYWHERE),
    Act.STOP: Rule("`/agent stop SLUG` (the agent stays down until a restart)", ANYWHERE),
    Act.COMPACT: Rule("`/agent compact SLUG`", ANYWHERE),
    Act.SEND: Rule("`/agent send SLUG TEXT` (steering from anywhere)", ANYWHERE),
    Act.REVIEW: Rule(
        "`/agent review PR [TEMPLATE]`: spawns a reviewer from the template, with its "
        "permissions (bypass by default), judged on the template",
        ANYWHERE,
        what="start reviews with",
    ),
}
"""The whole access policy, one row per action (docs/configuration.md shows it as a table)."""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str
    """Why, in words for the person (a refusal names the key to set) and for the log."""

    def __bool__(self) -> bool:
        return self.allowed

    def refusal(self, outcome: str) -> str:
        """The private note for a refused person: the reason, then what happened instead."""
        return f"{self.reason}; {outcome}."


def place(channel: str, own: Collection[str]) -> Where:
    """Where a request from ``channel`` comes from for an agent whose channel is any of
    ``own`` (its configured name and resolved id). Slack's DM ids start with ``D``."""
    if channel and channel in own:
        return Where.CHANNEL
    return Where.DM if not channel or channel.startswith("D") else Where.OTHER


def authorize(fleet: _Fleet, agent: _Agent, user: str, act: Act, where: Where) -> Decision:
    """THE access decision: may ``user`` do ``act`` on ``agent`` from ``where``?

    A non-empty allowlist (the agent's plus the fleet's) decides alone: listed users may, where
    the action's rule allows them; nobody else may. With no list, ``access: channel-members``
    lets anyone in the agent's own channel (the only proof of membership) and ``allowlist``
    lets nobody (fail closed).
    """
    rule, slug = RULES[act], agent.slug
    allow = allowlist(fleet, agent)
    if allow:
        if user not in allow:
            why = (
                f"you are not allowed to {rule.what} `{slug}` (you are not in its `allowed_users`)"
            )
            return Decision(False, "Sorry, " + why)
        if where not in rule.listed:
            return Decision(False, f"`{slug}` takes this only in its own channel")
        return Decision(True, "in allowed_users")
    if mode(fleet, agent) != "channel-members":
        return Decision(
            False,
            f"Nobody may {rule.what} `{slug}` from Slack yet: it has no `allowed_users`. "
            f"To allow it, {CLOSED_HINT}",
        )
    if where not in rule.members:
        return Decision(
            False,
            f"`{slug}` takes this only from its own channel (with `access: channel-members` "
            "and no `allowed_users`, only a request there shows you are a member)",
        )
    return Decision(True, "a member of its channel (access: channel-members)")


def slash_command(text: str) -> str | None:
    """The CLI command a message would run (its first word when it starts with ``/``)."""
    stripped = text.lstrip()
    if not stripped.startswith("/"):
        return None
    return stripped.split(None, 1)[0]


def command_allowed(agent: _Agent, text: str) -> str | None:
    """None when ``text`` may be sent; else the refused command (for the note)."""
    command = slash_command(text)
    if command is None or command in agent.slash_commands:
        return None
    return command


def slack_configured(environ: Mapping[str, str]) -> bool:
    """The runner uses Slack (both tokens set): the same rule as ``bridge.chat.factory``."""
    return bool(environ.get("SLACK_BOT_TOKEN") and environ.get("SLACK_APP_TOKEN"))


def kind(fleet: _Fleet, agent: _Agent, *, slack: bool) -> str:
    """``local`` | ``allowlist`` | ``channel-members`` | ``closed``, for ``status --json``."""
    if not slack:
        return "local"
    if allowlist(fleet, agent):
        return "allowlist"
    return "channel-members" if mode(fleet, agent) == "channel-members" else "closed"


def describe(fleet: _Fleet, agent: _Agent, *, slack: bool) -> str:
    """One line for ``doctor`` and the runner's start-up log."""
    what = kind(fleet, agent, slack=slack)
    if what == "local":
        return "local: console backend, steered only by local `agentbridge send`"
    if what == "allowlist":
        n = len(allowlist(fleet, agent))
        return f"allowlist: {n} Slack user{'s' if n != 1 else ''} may steer it"
    if what == "channel-members":
        return "channel-members: anyone who can post in its channel steers it (opt-in)"
    return f"closed: nobody can steer it from Slack; {CLOSED_HINT}"
