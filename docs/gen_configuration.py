"""The agents.yaml reference (``docs/configuration.md``), generated from the schema itself.

The pydantic models in :mod:`bridge.config.model` are the single source of truth for keys, types and
defaults; a hand-written reference drifts from them with the first edit. So the reference is
rendered from the models, and ``tests/unit/test_docs.py`` fails when the committed file differs
from :func:`render`. Regenerate with::

    python docs/gen_configuration.py > docs/configuration.md

A field's description comes from, in order: ``Field(description=...)``; its attribute docstring
(the string right after the annotated assignment in the class body); then :data:`_FALLBACK`.
pydantic exposes attribute docstrings only with ``use_attribute_docstrings=True``, which the
models do not set, so they are read here with :mod:`ast` from the source of
:mod:`bridge.config.model`. :data:`_FALLBACK` covers fields ``config.py`` does not document yet; a
docstring added there wins over it.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import sys
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from bridge.config import access as access_module
from bridge.config import model as config_module
from bridge.config import ops as ops_module
from bridge.config import pace as pace_module
from bridge.config import review as review_module
from bridge.config import watchdog as watchdog_module
from bridge.config.asks import AnswerPolicy
from bridge.config.model import (
    AgentConfig,
    CompactionConfig,
    Config,
    RestartPolicy,
    RuntimeDefaults,
    ScheduleConfig,
)
from bridge.config.ops import Metrics, Retention
from bridge.config.pace import SlackPace
from bridge.config.review import ReviewConfig
from bridge.config.values import token_limit
from bridge.config.watchdog import WatchdogConfig

__all__ = ["LOADER_SET", "SECTIONS", "file_keys", "main", "render"]


@dataclass(frozen=True, slots=True)
class Section:
    model: type[BaseModel]
    title: str
    anchor: str


SECTIONS: tuple[Section, ...] = (
    Section(Config, "Top level", "top-level"),
    Section(AgentConfig, "`agents[]`: one agent", "agents"),
    Section(RuntimeDefaults, "`runtimes.claude`, `runtimes.codex`", "runtimes"),
    Section(RestartPolicy, "`restart`", "restart"),
    Section(SlackPace, "`slack_pace`", "slack-pace"),
    Section(Metrics, "`metrics`", "metrics"),
    Section(Retention, "`retention`", "retention"),
    Section(ScheduleConfig, "`agents[].schedules[]`", "schedules"),
    Section(CompactionConfig, "`agents[].compaction`", "compaction"),
    Section(ReviewConfig, "`agents[].review`: a PR-reviewer template", "review"),
    Section(WatchdogConfig, "`agents[].watchdog`", "watchdog"),
    Section(AnswerPolicy, "`agents[].answers`", "answers"),
)

#: Model fields the loader fills in; writing them in the file is an error
#: (see ``validate_document`` in :mod:`bridge.config.errors`).
LOADER_SET: dict[type[BaseModel], frozenset[str]] = {Config: frozenset({"path"})}


@dataclass(frozen=True, slots=True)
class ExtraKey:
    """A key of the file that is not a model field: the loader consumes it before pydantic."""

    name: str
    after: str
    type: str
    default: str
    description: str


EXTRA_KEYS: dict[type[BaseModel], tuple[ExtraKey, ...]] = {
    Config: (
        ExtraKey(
            "defaults",
            after="runtimes",
            type="map of agent keys",
            default="unset",
            description=(
                "Agent keys applied to every agent before validation. The agent's own value "
                "wins; the mappings `env` and `compaction` merge key by key. `slug` is not "
                "allowed here. A bad value is reported once, against `defaults`."
            ),
        ),
    ),
}

_FALLBACK: dict[tuple[type[BaseModel], str], str] = {
    (Config, "agents"): "The fleet: one entry per agent.",
    (Config, "runtimes"): (
        "Defaults per runtime, keyed `claude` / `codex`. An agent's own `bin` and `model` win, "
        "its `env` is laid over the runtime's key by key, and its `args` come after the "
        "runtime's. Editing these counts as a launch-settings change for every agent of "
        "that runtime."
    ),
    (Config, "launch_stagger_seconds"): (
        "Minimum gap between two CLI launches, so a boot does not start every CLI (and its "
        "auth refresh) in the same second."
    ),
    (Config, "restart"): "How the reconciler relaunches agents whose CLI exited.",
    (AgentConfig, "slug"): (
        "Unique name: `[a-z0-9-]`, starting with a letter or digit, at most 60 characters. "
        "Also the tmux session name."
    ),
    (AgentConfig, "runtime"): "Which CLI runs the agent.",
    (AgentConfig, "workdir"): (
        "The directory the CLI runs in. `~` and `${VAR}` are expanded, a relative path is "
        "taken from the config file's directory (not the runner's cwd), and the directory "
        "must exist when the config is loaded."
    ),
    (AgentConfig, "channel"): (
        "The agent's chat channel: `#name` or a channel id (`C…`, `G…`, `D…`). Unset: `#<slug>`. "
        "Agents may share one: a reply in a thread goes to the agent owning the thread, and a "
        "top-level message to the one agent there still running; otherwise it is refused with "
        "a note, never guessed."
    ),
    (AgentConfig, "model"): (
        "The model (`--model` for Claude, `-m` for Codex). Unset: `runtimes.<runtime>.model`, "
        "else the CLI's own default."
    ),
    (AgentConfig, "bin"): (
        "The CLI executable, looked up on the agent's `PATH` or given as a path. Unset: "
        "`runtimes.<runtime>.bin`, else `claude` / `codex`."
    ),
    (AgentConfig, "env"): (
        "Extra environment for the CLI, laid over the runner's environment (without its Slack "
        "tokens) and `runtimes.<runtime>.env`. Values may use `${VAR}` from the runner's "
        "environment (`$${VAR}` is literal); an unset variable is a config error."
    ),
    (AgentConfig, "args"): "Extra CLI arguments, after `runtimes.<runtime>.args`.",
    (AgentConfig, "schedules"): "Prompts queued on a crontab schedule.",
    (AgentConfig, "compaction"): "When to nudge and when to force a compaction.",
    (AgentConfig, "enabled"): (
        "`false` stops the agent's tmux session (only one this runner created) and its mirror."
    ),
    (AgentConfig, "resume"): (
        "Relaunch into the same session (`claude --resume <id>`, `codex resume <id>`); "
        "`false` starts a fresh session at every launch."
    ),
    (AgentConfig, "ephemeral"): (
        "A one-shot agent that runs `task`; requires `task`. Every launch starts a fresh "
        "session (never resumed) and queues `task`; when the turn that ran it ends, the "
        "runner posts a note and stops the agent in state `done`, and it stays down, across "
        "runner restarts too, until `/agent restart` (or, for a spawned agent, "
        "`agentbridge spawn` again). PR reviewers are ephemeral agents."
    ),
    (AgentConfig, "task"): (
        "The prompt an `ephemeral` agent runs: queued at each of its launches, delivered "
        "like any prompt once the CLI is ready."
    ),
    (AgentConfig, "thinking"): "Also mirror the model's thinking blocks.",
    (AgentConfig, "allow_bots"): "Accept steering from other bots (ignored by default).",
    (RuntimeDefaults, "bin"): "Executable for agents of this runtime that set no `bin`.",
    (RuntimeDefaults, "model"): "Model for agents of this runtime that set no `model`.",
    (RuntimeDefaults, "env"): "Environment for agents of this runtime; an agent's keys win.",
    (RuntimeDefaults, "args"): "Arguments for agents of this runtime, before the agent's own.",
    (RestartPolicy, "max_failures"): (
        "Exits within `window_minutes` that put the agent in `crash_loop`. Stops the runner "
        "asked for (disable, removal, `--stop-agents`) do not count."
    ),
    (RestartPolicy, "window_minutes"): "The sliding window exits are counted in.",
    (RestartPolicy, "backoff_initial_seconds"): (
        "Delay before the second relaunch in the window (the first is immediate); it doubles "
        "with each further exit."
    ),
    (RestartPolicy, "backoff_max_seconds"): (
        "Upper bound of the relaunch delay; at least `backoff_initial_seconds`."
    ),
    (RestartPolicy, "crash_loop_retry_seconds"): "How often an agent in `crash_loop` is retried.",
    (ScheduleConfig, "cron"): (
        "Five-field crontab line (minute hour day month weekday). Weekday numbers mean what "
        "they mean to crontab (0 and 7 are Sunday); setting both day of month and day of week "
        "is refused (use two schedules)."
    ),
    (ScheduleConfig, "prompt"): (
        "The prompt queued when the schedule fires; it is pasted at the agent's next idle moment."
    ),
    (ScheduleConfig, "timezone"): "IANA time zone the cron line is read in (like Europe/Berlin).",
    (CompactionConfig, "hard"): (
        "Context size at which `/compact` is queued for the next turn boundary."
    ),
    (CompactionConfig, "soft"): (
        "Ascending thresholds below `hard`. Crossing one queues `nudge` once; a compaction "
        "re-arms them all."
    ),
    (CompactionConfig, "nudge"): "The prompt sent at a soft threshold.",
    (CompactionConfig, "escape_first"): "Send Escape to the TUI before pasting `/compact`.",
}

_LONG_DEFAULT = 60
_PREAMBLE = """\
# Configuration reference

<!-- Generated from bridge/config/model.py by
     `python docs/gen_configuration.py > docs/configuration.md`.
     Do not edit by hand: tests/unit/test_docs.py fails when this file is out of date. -->

`agents.yaml` is validated as a whole when it is loaded and on every save while the runner is
up. Every problem is one line naming the file, the agent (slug or index) and the key; unknown
keys are errors, with a "did you mean" hint. A broken edit changes nothing: the runner keeps the
last good config. Run `agentbridge validate --config agents.yaml` to check a file.

Whatever is saved in the file's place (bytes that are not UTF-8, a NUL, a truncated or huge file
(over 4 MiB), a directory, a FIFO, a symlink loop) is one such line, and a UTF-8 byte-order mark
is fine. The runner keeps a copy of each config it loaded in `<state dir>/config-last-good.yaml`.
A runner that starts while `agents.yaml` cannot be loaded runs on that copy (the same rule as a
broken edit: nothing changes) and logs every problem at ERROR with a line saying so (`status`,
`send` and `validate` print the same problems until the file is fixed); saving a fixed file
loads it as usual. With no copy (a first start) `agentbridge run` prints the problems
and exits with status 2, which the systemd unit does not restart (`RestartPreventExitStatus=2`).

Values are YAML-typed and strict: `"yes"` is not a bool and `"3"` is not a number. A key left
empty (`args:` with every item commented out) means an empty list or mapping. Token thresholds
take a count (`750000`) or a share of the model's context window (`"70%"`).

Changing an agent's launch settings (`runtime`, `workdir`, `model`, `bin`, `env`, `args`,
`resume`, or its runtime's defaults) takes effect at its next relaunch. Adding, removing,
enabling or disabling an agent takes effect at once.
"""


# -- descriptions -------------------------------------------------------------------------------


def attribute_docstrings(source: str) -> dict[tuple[str, str], str]:
    """``(class name, field name) -> docstring`` for every attribute docstring in ``source``.

    An attribute docstring is a string expression statement directly after an annotated
    assignment in a class body (PEP 257's convention, which pydantic also follows).
    """
    found: dict[tuple[str, str], str] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        for stmt, following in zip(node.body, node.body[1:], strict=False):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                found[(node.name, stmt.target.id)] = inspect.cleandoc(following.value.value)
    return found


def _config_docstrings() -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for module in (config_module, review_module, watchdog_module, pace_module, ops_module):
        found.update(
            attribute_docstrings(Path(inspect.getfile(module)).read_text(encoding="utf-8"))
        )
    return found


def _markdown(text: str) -> str:
    """reST-ish docstring text to one line of Markdown (``x`` and :role:`x` become `x`)."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text)
    text = text.replace("``", "`")
    return " ".join(text.split())


def describe(model: type[BaseModel], name: str, docstrings: dict[tuple[str, str], str]) -> str:
    field = model.model_fields[name]
    text = field.description or docstrings.get((model.__name__, name))
    return _markdown(text or _FALLBACK.get((model, name), ""))


# -- types, constraints, defaults -------------------------------------------------------------

_SCALARS: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "bool",
    Path: "path",
    type(None): "null",
}


def _validators(metadata: Sequence[Any]) -> set[Callable[..., Any]]:
    return {m.func for m in metadata if callable(getattr(m, "func", None))}


def type_name(annotation: Any, metadata: Sequence[Any] = ()) -> str:
    """A YAML-minded name for an annotation: ``list of string``, ``"claude" | "codex"``."""
    if token_limit in _validators(metadata):
        return 'integer | "N%"'
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0], annotation.__metadata__)
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is list:
        return f"list of {_grouped(type_name(args[0]))}"
    if origin is dict:
        return f"map of {_grouped(type_name(args[0]))} to {_grouped(type_name(args[1]))}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{_anchor(annotation)})"
    return _SCALARS.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _grouped(name: str) -> str:
    return f"({name})" if " | " in name else name


def _anchor(model: type[BaseModel]) -> str:
    return next(s.anchor for s in SECTIONS if s.model is model)


def constraints(field: FieldInfo) -> str:
    """Numeric bounds declared with ``Field(ge=..., gt=...)``, as ``≥ 1``."""
    marks = {
        annotated_types.Ge: ("≥", "ge"),
        annotated_types.Gt: (">", "gt"),
        annotated_types.Le: ("≤", "le"),
        annotated_types.Lt: ("<", "lt"),
    }
    parts = []
    for item in field.metadata:
        for kind, (sign, attr) in marks.items():
            if isinstance(item, kind):
                parts.append(f"{sign} {_value(getattr(item, attr))}")
    return ", ".join(parts)


def _value(value: Any) -> str:
    """A default as it would be written in YAML."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, BaseModel):
        return f"see [{type(value).__name__}](#{_anchor(type(value))})"
    return json.dumps(value, ensure_ascii=False)


def default_of(field: FieldInfo) -> Any:
    """The field's default value, PydanticUndefined when the key is required."""
    if field.default_factory is not None:
        factory = typing.cast(Callable[[], Any], field.default_factory)
        return factory()
    return field.default


# -- rendering ----------------------------------------------------------------------------------


def _cell(text: str) -> str:
    # GFM splits cells on every unescaped pipe, even inside code spans.
    return text.replace("|", "\\|")


def file_keys(model: type[BaseModel]) -> list[str]:
    """The keys a person writes in agents.yaml for this model, in schema order."""
    keys = [k for k in model.model_fields if k not in LOADER_SET.get(model, frozenset())]
    for extra in EXTRA_KEYS.get(model, ()):
        keys.insert(keys.index(extra.after) + 1, extra.name)
    return keys


def _section(section: Section, docstrings: dict[tuple[str, str], str]) -> list[str]:
    model = section.model
    lines = [f'<a id="{section.anchor}"></a>', "", f"## {section.title}", ""]
    intro = _markdown(inspect.cleandoc(model.__doc__ or ""))
    lines += [f"{intro} Schema: `{model.__module__}.{model.__name__}`.".strip(), ""]
    lines += ["| key | type | default | description |", "|---|---|---|---|"]
    notes: list[str] = []
    extras = {e.name: e for e in EXTRA_KEYS.get(model, ())}
    for key in file_keys(model):
        if key in extras:
            extra = extras[key]
            row = [f"`{key}`", extra.type, extra.default, extra.description]
            lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
            continue
        field = model.model_fields[key]
        kind = type_name(field.annotation, field.metadata)
        bounds = constraints(field)
        if bounds:
            kind += f", {bounds}"
        value = default_of(field)
        if value is PydanticUndefined:
            default = "required"
        else:
            default = _value(value)
            if isinstance(value, str) and len(default) > _LONG_DEFAULT:
                notes.append(f"Default `{key}`:\n\n> {value}")
                default = "see below"
            elif value is not None and not isinstance(value, BaseModel):
                default = f"`{default}`"
        row = [f"`{key}`", kind, default, describe(model, key, docstrings)]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    for key in sorted(LOADER_SET.get(model, frozenset())):
        notes.append(
            f"Not a key of the file: `{key}` is set by the loader. "
            f"{describe(model, key, docstrings)}"
        )
    for note in notes:
        lines += ["", note]
    lines.append("")
    return lines


_ACCESS_TITLE = "Who may do what: the access rules"
_ACCESS_INTRO = """\
Every action a person takes on an agent from Slack is judged by one decision
(`bridge.config.access.authorize`), on the agent it acts on (a review: its template), from where
the request came: the agent's own channel (a thread there, or a form a click there opened),
another channel, or a DM. A non-empty allowlist (the agent's `allowed_users` plus the top-level
one) decides alone, whatever `access` says; with no list, `access: channel-members` lets anyone
in the agent's channel, and `access: allowlist` (the default) lets nobody. Only a request from
the agent's own channel shows that someone is a member, so channel members never act from a DM
or another channel. Anyone refused gets a private note saying why, and the refusal is logged.
Local `agentbridge send` (and the console backend) is never restricted."""


def _where(places: frozenset[access_module.Where], who: str) -> str:
    if places == frozenset(access_module.Where):
        return f"{who}, from anywhere"
    return f"{who}, in its channel only"


def access_rules() -> list[str]:
    """The rules table, from ``bridge.config.access.RULES`` itself (so it cannot drift)."""
    lines = [
        '<a id="access-rules"></a>',
        "",
        f"## {_ACCESS_TITLE}",
        "",
        _ACCESS_INTRO,
        "",
        "| action | listed in `allowed_users` | no list, `channel-members` "
        "| no list, `allowlist` |",
        "|---|---|---|---|",
    ]
    for rule in access_module.RULES.values():
        listed = _where(rule.listed, "yes")
        members = _where(rule.members, "anyone")
        lines.append(f"| {_cell(rule.doc)} | {listed} | {members} | nobody |")
    lines.append("")
    return lines


def render() -> str:
    """The whole reference, deterministic (no paths, times or environment in it)."""
    docstrings = _config_docstrings()
    lines = [_PREAMBLE]
    lines += ["Sections:", ""]
    lines += [f"- [{s.title}](#{s.anchor})" for s in SECTIONS]
    lines.append(f"- [{_ACCESS_TITLE}](#access-rules)")
    lines.append("")
    for section in SECTIONS:
        lines += _section(section, docstrings)
    lines += access_rules()
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
