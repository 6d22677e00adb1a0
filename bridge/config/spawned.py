"""One-shot agents made from a template: ``agentbridge spawn TEMPLATE --name SLUG ...``.

A PR reviewer per pull request is the typical use: the template (often ``enabled: false`` in
agents.yaml) says which CLI, model and flags a reviewer uses; each spawn adds a copy with its
own slug, work dir (say a ``git worktree`` of the PR) and task. Spawned agents are written to
``<state dir>/spawned/<slug>.yaml``, never into the user's agents.yaml, and the runner loads
them next to it. A spawned agent is ephemeral: launched fresh, given its task, mirrored as
usual, and stopped when that turn completes.

A spawned file is the user's to break (its work dir removed by a cleanup, a hand edit): each one
is validated on its own, and a broken one is reported, naming its file, and skipped. It never
blocks agents.yaml, a hot reload, ``status`` or a restarted runner; ``validate`` and ``run``
load the fleet through the same :func:`load_fleet` and agree. Each spawn also writes a fresh
``spawn_id``, so spawning the same name again is recognisably a new run (see :func:`spawn_ids`).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from bridge.config.errors import validate_document
from bridge.config.model import AgentConfig, Config, ConfigError, load_config, parse_config
from bridge.config.reading import read_config_text
from runtimes.jsonfile import atomic_write_text

log = logging.getLogger("agentbridge.config")

#: The key a spawned file carries next to the agent's own keys: this spawn's identity.
SPAWN_ID = "spawn_id"


def spawned_dir(state_dir: Path) -> Path:
    return state_dir / "spawned"


def _read(path: Path) -> dict[str, Any] | str:
    """The spawned file's mapping, or a one-line problem naming it."""
    try:
        data = yaml.safe_load(read_config_text(path))
    except ConfigError as err:
        return "; ".join(err.errors)
    except RecursionError:
        return f"{path}: invalid YAML: nested too deeply"
    except yaml.YAMLError as exc:
        return f"{path}: invalid YAML: {' '.join(str(exc).split())}"
    if not isinstance(data, dict):
        return f"{path}: must be a mapping (one agent)"
    return data


def _files(state_dir: Path) -> list[Path]:
    folder = spawned_dir(state_dir)
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


def spawn_ids(state_dir: Path) -> dict[str, str]:
    """Slug -> spawn id of every readable spawned file (older files without one: none)."""
    out: dict[str, str] = {}
    for path in _files(state_dir):
        data = _read(path)
        if isinstance(data, dict) and isinstance(data.get("slug"), str):
            out[data["slug"]] = str(data.get(SPAWN_ID) or "")
    return out


def _document(config_path: Path, text: str | None = None) -> dict[str, Any]:
    try:
        data = yaml.safe_load(read_config_text(config_path) if text is None else text)
    except (ConfigError, yaml.YAMLError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _check_one(
    document: dict[str, Any],
    agent: dict[str, Any],
    config_path: Path,
    path: Path,
    environ: Mapping[str, str],
) -> list[str]:
    """Problems of one spawned agent, validated with agents.yaml's top level (runtimes,
    defaults) but alone, so its messages name its own file and nothing else."""
    trial = {**document, "agents": [agent]}
    try:
        text = yaml.safe_dump(trial, sort_keys=False)
        validate_document(text, Config, AgentConfig, config_path, str(path), environ)
    except ConfigError as err:
        label = f"agents[0] (slug {agent.get('slug')!r})"
        return [line.replace(label, f"spawned agent {agent.get('slug')!r}") for line in err.errors]
    return []


def load_fleet(
    config_path: Path,
    state_dir: Path,
    environ: Mapping[str, str] | None = None,
    problems: list[str] | None = None,
    text: str | None = None,
) -> Config:
    """agents.yaml plus the spawned agents that are valid.

    A broken agents.yaml raises exactly as ``load_config`` does. A broken spawned agent is left
    out; its problems (one line each, naming its file, ending in "skipped") go to ``problems``
    when given, else to the log. ``text`` stands for agents.yaml's content when given (the
    last good copy the runner kept, :mod:`bridge.config.lastgood`).
    """
    env = os.environ if environ is None else environ
    # errors name agents.yaml's own lines
    config = load_config(config_path, env) if text is None else parse_config(text, config_path, env)
    found: list[str] = []
    files = _files(state_dir)
    if not files:
        return config
    document = _document(config_path, text)
    known = {a.slug for a in config.agents}
    good: list[dict[str, Any]] = []
    for path in files:
        data = _read(path)
        if isinstance(data, str):
            found.append(f"{data}; spawned agent skipped")
            continue
        agent = {k: v for k, v in data.items() if k != SPAWN_ID}
        slug = agent.get("slug")
        if slug in known:
            found.append(f"{path}: slug {slug!r} is already an agent; spawned agent skipped")
            continue
        errors = _check_one(document, agent, config_path, path, env)
        if errors:
            found.extend(f"{line}; spawned agent skipped" for line in errors)
            continue
        known.add(str(slug))
        good.append(agent)
    if good:
        document["agents"] = list(document.get("agents") or []) + good
        try:
            config = parse_config(yaml.safe_dump(document, sort_keys=False), config_path, env)
        except ConfigError as err:  # each was fine alone: say so rather than block the fleet
            found.extend(f"spawned agents together: {line}; all skipped" for line in err.errors)
    if problems is not None:
        problems.extend(found)
    else:
        for line in found:
            log.error("config: %s", line)
    return config


def _set(target: dict[str, Any], dotted: str, raw: str) -> None:
    keys = dotted.split(".")
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    value = yaml.safe_load(raw) if raw else ""
    target[keys[-1]] = str(value) if keys[0] == "env" else value


def spawn(
    config_path: Path,
    state_dir: Path,
    template: str,
    name: str,
    sets: list[str],
    prompt: str,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """Write a spawned agent after validating it; return its file.

    Spawning a name again replaces its definition with a new ``spawn_id``: the runner takes it
    as a fresh run (a new review of the same PR), even when the earlier one is done.
    """
    document = _document(config_path)
    agents = [a for a in document.get("agents") or [] if isinstance(a, dict)]
    base = next((a for a in agents if a.get("slug") == template), None)
    if base is None:
        raise ConfigError(config_path, [f"{config_path}: no agent {template!r} to spawn from"])
    # A copy runs: it is not a template (``review``) and has no schedules of its own.
    agent = {k: v for k, v in base.items() if k not in ("schedules", "review")}
    agent.update(slug=name, enabled=True, ephemeral=True, task=prompt)
    relative_to = config_path.parent  # the template's relative paths mean the config's dir
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(config_path, [f"--set {item!r}: expected key=value"])
        _set(agent, key.strip(), value)
        if key.strip() == "workdir":
            relative_to = Path.cwd()  # a path typed on the command line means the shell's dir
    workdir = Path(str(agent.get("workdir", "."))).expanduser()
    agent["workdir"] = str(workdir if workdir.is_absolute() else (relative_to / workdir).resolve())
    if any(a.get("slug") == name for a in agents):
        raise ConfigError(config_path, [f"{config_path}: {name!r} is already a configured agent"])
    env = os.environ if environ is None else environ
    load_config(config_path, env)
    shown = spawned_dir(state_dir) / f"{name}.yaml"
    errors = _check_one(document, agent, config_path, shown, env)
    if errors:
        raise ConfigError(config_path, errors)
    folder = spawned_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_text(shown, yaml.safe_dump({**agent, SPAWN_ID: uuid.uuid4().hex}, sort_keys=False))
    return shown
