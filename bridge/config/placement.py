"""Which host runs which agent: the ``host:`` key, the runner's identity, the store keys.

Several runners (one per host) may read the same agents.yaml and share one Postgres
(``docs/scaling.md``). Each agent is pinned to one host by ``host:``; a runner knows its own
name from ``AGENTBRIDGE_HOST`` (default: the machine's hostname) and supervises, mirrors,
schedules and answers hooks only for the agents placed on it.

The rule for an agent without ``host:``: it belongs to the runner only when the store is the
runner's own (SQLite, one host), which is exactly today's single-box behaviour. With a shared
store such an agent is run by nobody, and the runner and ``doctor`` say so, rather than let
every host start a copy of it.

The keys live here as two small mixins of the models in :mod:`bridge.config.model` (which stays
under the 400-line module limit); their descriptions feed ``docs/configuration.md``.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from typing import Annotated, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

HOST_ENV = "AGENTBRIDGE_HOST"
_HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def _host_name(value: str) -> str:
    if not _HOST_RE.fullmatch(value):
        raise ValueError(f"{value!r} must be a host name ([A-Za-z0-9._-], at most 63 characters)")
    return value


HostName = Annotated[str, AfterValidator(_host_name)]


class AgentPlacement(BaseModel):
    """The per-agent placement key (mixed into ``AgentConfig``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    host: HostName | None = Field(
        default=None,
        description=(
            "The host whose runner runs this agent (its `AGENTBRIDGE_HOST`, default the "
            "machine's hostname). Unset: the agent runs on the one runner of a single-box "
            "(SQLite) setup; with a shared Postgres store every agent needs one. An agent "
            "placed on another host is not checked for a local `workdir`."
        ),
    )


class FleetPlacement(BaseModel):
    """The fleet-level keys of a multi-host setup (mixed into ``Config``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    store: str | None = Field(
        default=None,
        description=(
            "A PostgreSQL URL (`postgresql://user@host/db`) shared by the runners of several "
            "hosts; `AGENTBRIDGE_DATABASE_URL` overrides it (and keeps a password out of the "
            "file). Unset: the embedded SQLite file in the state dir."
        ),
    )
    host_down_after_seconds: float = Field(
        default=60.0,
        gt=0,
        description=(
            "A host whose runner has not written its heartbeat for this long is reported down, "
            "once, in each of its agents' channels (shared store only)."
        ),
    )
    move_takeover_after_seconds: float = Field(
        default=120.0,
        gt=0,
        description=(
            "`agentbridge move`: when the agent's old host has not written its heartbeat for "
            "this long, the new host takes the agent without the old host's handover, bumping "
            "its epoch so the old host, should it come back, writes nothing more for it "
            "(shared store only)."
        ),
    )

    routed_max_wait_minutes: float | None = Field(
        default=None,
        gt=0,
        description=(
            "A message that waited longer than this for its agent's host to come back (routed "
            "by another host's runner while it was down) is not pasted when the host returns: "
            "its sender gets a thread reply saying it was not delivered and why. Unset: "
            "everything is delivered however long it waited (shared store only)."
        ),
    )


def runner_host(environ: Mapping[str, str] | None = None) -> str:
    """This runner's identity: ``AGENTBRIDGE_HOST``, else the machine's hostname."""
    env = os.environ if environ is None else environ
    return env.get(HOST_ENV) or socket.gethostname().split(".")[0] or "localhost"


class Placed(Protocol):
    @property
    def host(self) -> str | None: ...


def owns(agent: Placed, host: str, *, shared: bool) -> bool:
    """Whether the runner named ``host`` runs ``agent`` (see the module docstring)."""
    return agent.host == host if agent.host is not None else not shared


def placed_elsewhere(host: str | None, environ: Mapping[str, str]) -> bool:
    """An explicit ``host:`` naming another machine (its workdir is not ours to check)."""
    return host is not None and host != runner_host(environ)
