"""Who may steer an agent from chat, and which CLI commands they may send: the config keys and
the one rule that inbound steering, ``/agent``, ``doctor`` and ``status`` all apply.

Agents run with bypass permissions, so whoever steers one runs shell commands as the runner's
user. The default is therefore closed: with no ``allowed_users`` for an agent (its own list plus
the top-level one), nobody steers it from Slack. ``access: channel-members`` (per agent or for
the fleet) is the explicit opt-in to the old open behaviour; a non-empty allowlist restricts
steering in either mode, so the opt-in only decides what an *empty* list means. The console
backend (``agentbridge send``) is not chat: the local user owns the box and is never refused.

The keys live here as two small mixins of the models in :mod:`bridge.config.model` (which stays
under the 400-line module limit); their descriptions feed ``docs/configuration.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
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


def may_steer(fleet: _Fleet, agent: _Agent, user: str, *, in_channel: bool) -> bool:
    """Whether ``user`` may steer (or command) ``agent``.

    ``in_channel``: the request comes from the agent's own channel (or a thread there), the
    only place where ``channel-members`` grants anything; a DM or another channel proves no
    membership, so there only the allowlist counts.
    """
    allow = allowlist(fleet, agent)
    if allow:
        return user in allow
    return mode(fleet, agent) == "channel-members" and in_channel


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
