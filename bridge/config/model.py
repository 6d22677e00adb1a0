"""The fleet description (agents.yaml): schema, validation and loading.

Everything downstream (reconciler, scheduler, mirror) trusts a :class:`Config` completely, so all
checking happens here, once, against the runner's real environment: workdirs must exist, every
``${VAR}`` must be set, cron expressions must parse. A bad file yields every problem at once, one
line each (see :mod:`bridge.config.errors`), so a hot reload can be refused with a message a person
can act on while the fleet keeps running on the last good config.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bridge.config.access import AgentAccess, FleetAccess
from bridge.config.asks import AskSettings
from bridge.config.errors import ConfigError, describe_value, validate_document
from bridge.config.ops import Metrics, Retention
from bridge.config.pace import SlackPace
from bridge.config.placement import AgentPlacement, FleetPlacement, placed_elsewhere
from bridge.config.reading import read_config_text
from bridge.config.review import ReviewConfig
from bridge.config.values import (
    DEFAULT_NUDGE,
    agent_env_value,
    comparable,
    crontab_trigger,
    expand_vars,
    not_blank,
    resolve_limit,
    token_limit,
)
from bridge.config.watchdog import Watchdog, WatchdogConfig

__all__ = [
    "DEFAULT_NUDGE",
    "AgentConfig",
    "CompactionConfig",
    "Config",
    "ConfigError",
    "RestartPolicy",
    "RuntimeDefaults",
    "ScheduleConfig",
    "crontab_trigger",
    "expand_vars",
    "load_config",
    "parse_config",
    "resolve_limit",
]

RuntimeName = Literal["claude", "codex"]

_SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,59}")
_CHANNEL_RE = re.compile(r"#[a-z0-9][a-z0-9._-]{0,79}|[CGD][A-Z0-9]{8,}")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _environ(info: ValidationInfo) -> Mapping[str, str]:
    """The environment ``${VAR}`` resolves against: the loader's, else the process's."""
    ctx = info.context
    return ctx["environ"] if isinstance(ctx, dict) and "environ" in ctx else os.environ


def _env_value(value: str, info: ValidationInfo) -> str:
    return agent_env_value(value, _environ(info))


def _env_name(name: str) -> str:
    if not _ENV_NAME_RE.fullmatch(name):
        raise ValueError("must be a variable name (letters, digits, _; not starting with a digit)")
    return name


def _list_if_none(value: Any) -> Any:
    """A key left empty in YAML (``args:`` with every item commented out) means 'none'."""
    return [] if value is None else value


def _dict_if_none(value: Any) -> Any:
    return {} if value is None else value


EnvMap = Annotated[
    dict[Annotated[str, AfterValidator(_env_name)], Annotated[str, AfterValidator(_env_value)]],
    BeforeValidator(_dict_if_none),
]
StrList = Annotated[list[str], BeforeValidator(_list_if_none)]
NonBlank = Annotated[str, AfterValidator(not_blank)]
TokenLimit = Annotated[int | str, BeforeValidator(token_limit)]


class _Model(BaseModel):
    """Frozen (a loaded config is a value, compared across reloads), strict (YAML already typed
    the values; ``"yes"`` for a bool is a mistake worth reporting) and closed (typos are errors)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class RuntimeDefaults(_Model):
    """Per-runtime defaults, so a fleet of Claude agents states its model and flags once."""

    bin: NonBlank | None = None
    model: NonBlank | None = None
    env: EnvMap = Field(default_factory=dict)
    args: StrList = Field(default_factory=list)


class RestartPolicy(_Model):
    """How hard the reconciler tries before declaring an agent crash-looping."""

    max_failures: int = Field(default=5, ge=1)
    window_minutes: float = Field(default=10.0, gt=0)
    backoff_initial_seconds: float = Field(default=1.0, gt=0)
    backoff_max_seconds: float = Field(default=60.0, gt=0)
    crash_loop_retry_seconds: float = Field(default=300.0, gt=0)

    @field_validator("backoff_max_seconds")
    @classmethod
    def _max_above_initial(cls, value: float, info: ValidationInfo) -> float:
        initial = info.data.get("backoff_initial_seconds")
        if initial is not None and value < initial:
            raise ValueError(f"must be >= backoff_initial_seconds ({initial}), got {value}")
        return value


class ScheduleConfig(_Model):
    """A prompt queued for the agent on a crontab schedule (delivered when it is idle)."""

    cron: str
    prompt: NonBlank
    timezone: str = "UTC"
    grace_minutes: Annotated[float, Field(ge=0)] = 60
    """A run missed while the runner was down is still sent if it is back within this long."""

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        try:
            crontab_trigger(value)  # the time zone does not change what parses
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{value!r} is not a valid cron expression ({exc})") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (ValueError, zoneinfo.ZoneInfoNotFoundError):
            raise ValueError(f"{value!r} is not a known time zone (like Europe/Berlin)") from None
        return value

    def trigger(self) -> Any:
        """The CronTrigger to schedule (always use this, not ``from_crontab`` on ``cron``)."""
        return crontab_trigger(self.cron, self.timezone)


class CompactionConfig(_Model):
    """When the runner nudges (soft) and forces (hard) a compaction of a long session."""

    enabled: bool | None = None
    """None: the runtime decides (on for CLIs that do not compact by themselves)."""
    hard: TokenLimit = 750_000
    soft: Annotated[list[TokenLimit], BeforeValidator(_list_if_none)] = Field(
        default_factory=lambda: list[int | str]([500_000, 600_000, 700_000])
    )
    nudge: NonBlank = DEFAULT_NUDGE
    escape_first: bool = False

    @field_validator("soft")
    @classmethod
    def _soft_below_hard(cls, soft: list[int | str], info: ValidationInfo) -> list[int | str]:
        for a, b in itertools.pairwise(soft):
            pair = comparable(a, b)
            if pair and pair[0] >= pair[1]:
                raise ValueError(f"must be ascending, got {a!r} before {b!r}")
        hard = info.data.get("hard")
        for limit in soft:
            pair = comparable(limit, hard) if hard is not None else None
            if pair and pair[0] >= pair[1]:
                raise ValueError(f"{limit!r} is not below hard ({hard!r})")
        return soft


class AgentConfig(_Model, AgentAccess, AgentPlacement, AskSettings):
    """One agent of the fleet, as written (see :meth:`resolved` for runtime defaults applied)."""

    slug: str
    runtime: RuntimeName = "claude"
    workdir: Path
    channel: str | None = None
    model: NonBlank | None = None
    bin: NonBlank | None = None
    env: EnvMap = Field(default_factory=dict)
    args: StrList = Field(default_factory=list)
    schedules: Annotated[list[ScheduleConfig], BeforeValidator(_list_if_none)] = Field(
        default_factory=list
    )
    compaction: Annotated[CompactionConfig, BeforeValidator(_dict_if_none)] = Field(
        default_factory=CompactionConfig
    )
    enabled: bool = True
    resume: bool = True
    ephemeral: bool = False
    task: NonBlank | None = None
    thinking: bool = False
    allow_bots: bool = False
    review: ReviewConfig | None = None
    """Makes this agent a PR-reviewer template (never run itself): see docs/pr-review.md."""
    watchdog: Watchdog = WatchdogConfig()
    """Usage limits, stuck and over-long turns (see the ``watchdog`` section)."""

    @field_validator("slug")
    @classmethod
    def _valid_slug(cls, value: str) -> str:
        if not _SLUG_RE.fullmatch(value):
            raise ValueError(
                "must match [a-z0-9-], start with a letter or digit, at most 60 characters"
            )
        return value

    @field_validator("workdir", mode="before")
    @classmethod
    def _resolve_workdir(cls, value: Any, info: ValidationInfo) -> Path:
        """Expand ``~``/``${VAR}``, anchor at the config's dir (not the cwd), insist it exists."""
        if isinstance(value, Path):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"must be a directory path, got {describe_value(value)}")
        environ = _environ(info)
        text = expand_vars(value, environ)
        if (text == "~" or text.startswith("~/")) and environ.get("HOME"):
            text = environ["HOME"] + text[1:]
        path = Path(os.path.expanduser(text))
        if not path.is_absolute():
            ctx = info.context
            base = ctx.get("base_dir") if isinstance(ctx, dict) else None
            path = (base if isinstance(base, Path) else Path.cwd()) / path
        if placed_elsewhere(info.data.get("host"), environ):
            return path  # another host's directory: that host's runner checks it
        try:
            if not path.exists():
                raise ValueError(f"{path} does not exist")
            if not path.is_dir():
                raise ValueError(f"{path} is not a directory")
        except OSError as exc:
            raise ValueError(f"{path}: {exc.strerror or exc}") from None
        return path.resolve()

    @field_validator("channel")
    @classmethod
    def _valid_channel(cls, value: str | None) -> str | None:
        if value is not None and not _CHANNEL_RE.fullmatch(value):
            raise ValueError(f"{value!r} must be '#name' or a channel id like C0123456789")
        return value

    @model_validator(mode="after")
    def _task_when_ephemeral(self) -> AgentConfig:
        if self.ephemeral and self.task is None:
            raise ValueError("task: required when ephemeral is true")
        return self

    def _runtime_defaults(self, config: Config) -> RuntimeDefaults:
        return config.runtimes.get(self.runtime) or RuntimeDefaults()

    def effective_bin(self, config: Config) -> str | None:
        """The binary to run; None means the runtime's own default (runtimes/ knows it)."""
        return self.bin or self._runtime_defaults(config).bin

    def effective_model(self, config: Config) -> str | None:
        return self.model or self._runtime_defaults(config).model

    def effective_env(self, config: Config) -> dict[str, str]:
        """Runtime env overlaid key by key with the agent's (not the runner's environment)."""
        return {**self._runtime_defaults(config).env, **self.env}

    def effective_args(self, config: Config) -> list[str]:
        """Runtime args first, then the agent's, so an agent can add to shared flags."""
        return [*self._runtime_defaults(config).args, *self.args]

    def resolved(self, config: Config) -> AgentConfig:
        """A copy with runtime defaults applied. Apply once: args would be added twice."""
        return self.model_copy(
            update={
                "bin": self.effective_bin(config),
                "model": self.effective_model(config),
                "env": self.effective_env(config),
                "args": self.effective_args(config),
            }
        )

    def spec_hash(self, config: Config | None = None) -> str:
        """A short stable hash of what shapes the launched process, so the daemon can tell a
        relaunch-worthy edit (args, env, ...) from a cosmetic one (channel, schedules). Pass
        ``config`` to hash the effective values, so editing ``runtimes`` counts too."""
        agent = self.resolved(config) if config is not None else self
        spec = agent.ask_spec() | {
            "runtime": agent.runtime,
            "workdir": str(agent.workdir),
            "model": agent.model,
            "bin": agent.bin,
            "env": dict(sorted(agent.env.items())),
            "args": agent.args,
            "resume": agent.resume,
        }
        blob = json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


class Config(_Model, FleetAccess, FleetPlacement):
    """A validated agents.yaml. ``defaults:`` is already folded into each agent."""

    agents: Annotated[list[AgentConfig], BeforeValidator(_list_if_none)]
    runtimes: Annotated[dict[RuntimeName, RuntimeDefaults], BeforeValidator(_dict_if_none)] = {}
    tmux_socket: NonBlank | None = None
    """tmux ``-L`` name; AGENTBRIDGE_TMUX_SOCKET overrides it (resolved by the caller)."""
    launch_stagger_seconds: float = Field(default=3.0, ge=0)
    restart: Annotated[RestartPolicy, BeforeValidator(_dict_if_none)] = RestartPolicy()
    signal_grace_seconds: float = Field(default=60.0, gt=0)
    """An agent silent this long after a launch or a prompt is flagged ``no_signal``."""
    slack_pace: Annotated[SlackPace, BeforeValidator(_dict_if_none)] = SlackPace()
    """Posting pace of the Slack backend (per channel and workspace-wide; bridge/config/pace.py)."""
    metrics: Annotated[Metrics, BeforeValidator(_dict_if_none)] = Metrics()
    """The Prometheus endpoint, off by default (bridge/config/ops.py)."""
    retention: Annotated[Retention, BeforeValidator(_dict_if_none)] = Retention()
    """How long old records are kept (bridge/config/ops.py)."""
    path: Path = Path("agents.yaml")
    """The file this came from (absolute when loaded from a file)."""

    @field_validator("tmux_socket")
    @classmethod
    def _socket_name(cls, value: str | None) -> str | None:
        if value is not None and "/" in value:
            raise ValueError(f"{value!r} must be a socket name (tmux -L), not a path")
        return value

    def agent(self, slug: str) -> AgentConfig | None:
        return next((a for a in self.agents if a.slug == slug), None)

    def enabled_agents(self) -> list[AgentConfig]:
        return [a for a in self.agents if a.enabled and a.review is None]

    def channel_of(self, slug: str) -> str:
        """The agent's channel; ``#<slug>`` for a slug no longer (or never) configured."""
        agent = self.agent(slug)
        return channel_for(agent) if agent else default_channel(slug)

    def channels(self) -> dict[str, str]:
        """Every configured agent's channel, by slug."""
        return {a.slug: channel_for(a) for a in self.agents}


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file; raise ConfigError listing every problem, one a line."""
    return parse_config(read_config_text(Path(path)), path, environ)


def parse_config(text: str, path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Validate config text as if read from ``path`` (hot-reload diffs, tests)."""
    env = os.environ if environ is None else environ
    return validate_document(text, Config, AgentConfig, Path(path), str(path), env)


def default_channel(slug: str) -> str:
    """The channel an agent posts to when its config names none: ``#<slug>``."""
    return f"#{slug}"


def channel_for(agent: AgentConfig) -> str:
    """The one rule for an agent's channel (the configured one, else ``#<slug>``)."""
    return agent.channel or default_channel(agent.slug)
