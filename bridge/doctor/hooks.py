"""The hook part of ``agentbridge doctor``: recent hook failures, and whose hook command runs.

Agents reach the runner only through ``agentbridge hook`` run by absolute path
(:func:`bridge.hooks.command.hook_command`); if that path is another installation, or a Python that
cannot import this package from the agent's cwd, every hook fails quietly and only
``hooks.log`` (written by :mod:`bridge.hooks.client`) knows. These checks read that log and
probe the command the way an agent would run it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bridge.config.model import Config
from bridge.doctor.check import Check
from bridge.hooks.command import hook_command

HOOK_WINDOW_S = 24 * 3600
_HOOK_LOG_TAIL = 8 << 20
_PROBE_TIMEOUT = 30.0


def hook_failures(
    log: Path, now: float, window: float = HOOK_WINDOW_S
) -> dict[str, list[dict[str, Any]]]:
    """Failures per slug since ``now - window``, oldest first, from the tail of hooks.log."""
    try:
        with log.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - _HOOK_LOG_TAIL))
            data = fh.read()
    except OSError:
        return {}
    lines = data.splitlines()
    if size > _HOOK_LOG_TAIL:
        lines = lines[1:]  # the first line is cut
    found: dict[str, list[dict[str, Any]]] = {}
    for raw in lines:
        try:
            entry = json.loads(raw)
            ts = float(entry["ts"])
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(entry, dict) and now - window <= ts <= now + 60:
            found.setdefault(str(entry.get("slug") or "?"), []).append(entry)
    return found


def _ago(seconds: float) -> str:
    return f"{seconds / 60:.0f} min ago" if seconds < 5400 else f"{seconds / 3600:.1f} h ago"


def check_hooks_log(state_dir: Path, now: float | None = None) -> list[Check]:
    """Hook failures per agent. Hooks that found no runner listening (``runner_down``, see
    :mod:`bridge.hooks.client`) are expected while the runner is stopped, e.g. the
    ``SessionEnd`` of agents a clean stop ended: one ok line, unless a runner is up now and
    refused them since it started."""
    now = time.time() if now is None else now
    found = hook_failures(state_dir / "hooks.log", now)
    started = _runner_started(state_dir)
    checks = []
    down = [e for entries in found.values() for e in entries if e.get("runner_down")]
    refused_live = [e for e in down if started is not None and float(e["ts"]) >= started]
    if down and not refused_live:
        last = max(down, key=lambda e: float(e["ts"]))
        detail = (
            f"{len(down)} hook{'s' if len(down) != 1 else ''} fired while no runner was "
            f"listening (last {_ago(now - float(last['ts']))}, {last.get('event', '?')}): "
            "expected while the runner is stopped"
        )
        checks.append(Check("hooks", True, detail))
    for slug, entries in sorted(found.items()):
        failures = [e for e in entries if not e.get("runner_down") or e in refused_live]
        if not failures:
            continue
        last = failures[-1]
        detail = (
            f"{len(failures)} hook failure{'s' if len(failures) != 1 else ''} in the last 24 h; "
            f"last {_ago(now - float(last['ts']))} ({last.get('event', '?')}): "
            f"{last.get('error', '?')}"
        )
        checks.append(Check("hooks", False, detail, slug))
    if not any(not c.ok for c in checks):
        checks.insert(0, Check("hooks", True, "no hook failures in the last 24 h"))
    return checks


def _runner_started(state_dir: Path) -> float | None:
    """When the runner holding the state dir's lock started (it rewrites ``runner.lock`` with
    its pid on start), or None when no runner holds it."""
    path = state_dir / "runner.lock"
    try:
        with path.open("a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return path.stat().st_mtime
            fcntl.flock(handle, fcntl.LOCK_UN)
    except OSError:
        return None
    return None


def _interpreter(script: str, environ: Mapping[str, str]) -> str | None:
    """The Python a console script runs with, from its ``#!`` line."""
    try:
        with open(script, "rb") as fh:
            first = fh.readline(512).decode(errors="replace").strip()
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    words = first[2:].split()
    if words and os.path.basename(words[0]) == "env" and len(words) > 1:
        return shutil.which(words[1], path=environ.get("PATH"))
    return words[0] if words else None


def installation(python: str, environ: Mapping[str, str], cwd: Path) -> str | None:
    """Which bridge package ``python`` imports, from a neutral cwd (as a hook would)."""
    code = "import os, bridge as m; print(os.path.realpath(os.path.dirname(m.__file__)))"
    try:
        out = subprocess.run(
            [python, "-c", code],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=dict(environ),
            timeout=_PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[-1] if out.returncode == 0 and lines else None


def _ours() -> str:
    return os.path.realpath(Path(__file__).parents[1])  # this installation's bridge/ package


def check_hook_command(
    config: Config | None, state_dir: Path, environ: Mapping[str, str], command: str | None = None
) -> list[Check]:
    """Agents' hooks run ``hook_command()`` by absolute path: it must be this installation."""
    command = hook_command() if command is None else command
    words = shlex.split(command)
    exe = words[0] if words else ""
    cwd = state_dir if state_dir.is_dir() else Path(tempfile.gettempdir())
    if not (os.path.isabs(exe) and os.path.isfile(exe) and os.access(exe, os.X_OK)):
        return [Check("hook command", False, f"{command!r}: {exe!r} is not an executable file")]
    python = (
        exe
        if words[1:3] in (["-m", "bridge"], ["-m", "bridge.cli"])
        else _interpreter(exe, environ)
    )
    where = installation(python, environ, cwd) if python else None
    if where == _ours():
        checks = [Check("hook command", True, f"{command} (this installation)")]
    else:
        detail = f"{command} runs {where or 'no importable bridge package'}, not {_ours()}"
        checks = [Check("hook command", False, detail)]
    groups: dict[str | None, list[str]] = {}  # agents by the PATH their env gives them
    if config is not None:
        for agent in config.enabled_agents():
            path_value = {**environ, **agent.effective_env(config)}.get("PATH")
            groups.setdefault(path_value, []).append(agent.slug)
    for path_value, slugs in (groups or {environ.get("PATH"): []}).items():
        detail = _shadow(path_value, exe, environ, cwd)
        if len(slugs) > 1 and len(groups) > 1:
            detail = f"{detail} (agents {', '.join(slugs)})"
        checks.append(
            Check("agentbridge on PATH", True, detail, slugs[0] if len(slugs) == 1 else None)
        )
    return checks


def _shadow(path_value: str | None, exe: str, environ: Mapping[str, str], cwd: Path) -> str:
    """An ``agentbridge`` first on the agents' PATH that is another installation is harmless
    to hooks (absolute path) but is what an agent or a person typing ``agentbridge`` gets."""
    found = shutil.which("agentbridge", path=path_value)
    if found is None:
        return f"no agentbridge on the agents' PATH; hooks run {exe}"
    if os.path.realpath(found) in {os.path.realpath(exe), os.path.realpath(sys.argv[0])}:
        where: str | None = _ours()
    else:
        python = _interpreter(found, environ)
        where = installation(python, environ, cwd) if python else None
    if where == _ours():
        return f"{found} (first on the agents' PATH) is this installation"
    return (
        f"{found}, first on the agents' PATH, is another installation ({where or 'unknown'}); "
        f"harmless to hooks, which run {exe} by absolute path"
    )
