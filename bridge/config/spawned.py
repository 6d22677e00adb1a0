"""One-shot agents made from a template: ``agentbridge spawn TEMPLATE --name SLUG ...``.

A PR reviewer per pull request is the typical use: the template (often ``enabled: false`` in
agents.yaml) says which CLI, model and flags a reviewer uses; each spawn adds a copy with its
own slug, work dir (say a ``git worktree`` of the PR) and task. Spawned agents are written to
``<state dir>/spawned/<slug>.yaml``, never into the user's agents.yaml, and the runner loads
them next to it. A spawned agent is ephemeral: launched fresh, given its task, mirrored as
usual, and stopped when that turn completes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from bridge.config.model import Config, ConfigError, parse_config
from runtimes.jsonfile import atomic_write_text


def spawned_dir(state_dir: Path) -> Path:
    return state_dir / "spawned"


def _spawned(state_dir: Path) -> list[dict[str, Any]]:
    agents = []
    folder = spawned_dir(state_dir)
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            agents.append(data)
    return agents


def _document(config_path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def load_fleet(
    config_path: Path, state_dir: Path, environ: Mapping[str, str] | None = None
) -> Config:
    """agents.yaml plus the spawned agents. A broken agents.yaml is reported exactly as
    ``load_config`` reports it (the spawned files are validated when they are written)."""
    text = config_path.read_text(encoding="utf-8") if config_path.exists() else ""
    config = parse_config(text, config_path, environ)  # errors name agents.yaml's own lines
    extra = _spawned(state_dir)
    if not extra:
        return config
    document = _document(config_path)
    known = {a.slug for a in config.agents}
    document["agents"] = list(document.get("agents") or []) + [
        a for a in extra if a.get("slug") not in known
    ]
    return parse_config(yaml.safe_dump(document, sort_keys=False), config_path, environ)


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
    """Write a spawned agent after validating the fleet with it; return its file."""
    document = _document(config_path)
    agents = [a for a in document.get("agents") or [] if isinstance(a, dict)]
    base = next((a for a in agents if a.get("slug") == template), None)
    if base is None:
        raise ConfigError(config_path, [f"{config_path}: no agent {template!r} to spawn from"])
    agent = {k: v for k, v in base.items() if k not in ("schedules",)}
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
    trial = dict(document)
    trial["agents"] = agents + [a for a in _spawned(state_dir) if a.get("slug") != name] + [agent]
    parse_config(yaml.safe_dump(trial, sort_keys=False), config_path, environ)
    folder = spawned_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{name}.yaml"
    atomic_write_text(path, yaml.safe_dump(agent, sort_keys=False))
    return path
