"""``agentbridge doctor``: check everything a fleet needs, one line per finding.

Most fleet failures are silent until an agent crash-loops or a message never arrives: an old
tmux, a CLI missing from the agent's PATH, a flag the installed CLI no longer accepts, hooks
that cannot reach the runner, a state dir on a read-only mount, a bot not invited to its
channel. Each check here turns one of those into a :class:`Check` a person can act on. Checks
never stop at the first failure, and none of them starts an agent, touches a work tree or posts
to Slack (the launch-flag canary is described in :mod:`runtimes.canary`).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

from bridge.config import paths
from bridge.config.model import AgentConfig, Config, ConfigError, load_config
from bridge.doctor.check import Check
from bridge.fleet.launch import launch_context
from bridge.hooks.command import hook_command
from bridge.store.db import Store
from runtimes import LaunchContext, get_runtime
from runtimes.canary import Canary, run_canary
from runtimes.tested import is_tested, normalize, tested_versions

MIN_TMUX = (3, 2)
_PROBE_TIMEOUT = 30.0


# -- tmux ---------------------------------------------------------------------------------------


def tmux_version(text: str) -> tuple[int, int] | None:
    """``tmux 3.3a`` -> (3, 3); ``tmux next-3.5`` -> (3, 5); None when there is no number."""
    match = re.search(r"(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def check_tmux(environ: Mapping[str, str]) -> Check:
    """The runner respawns panes with ``respawn-pane -e`` (per-pane env), new in tmux 3.2."""
    found = shutil.which("tmux", path=environ.get("PATH"))
    if found is None:
        return Check("tmux", False, "tmux not found on PATH (tmux >= 3.2 is required)")
    try:
        out = subprocess.run(
            [found, "-V"], capture_output=True, text=True, timeout=_PROBE_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return Check("tmux", False, f"{found} -V failed: {err}")
    text = (out.stdout or out.stderr).strip()
    version = tmux_version(text)
    if version is None:
        return Check("tmux", False, f"cannot read the version of {found}: {text!r}")
    if version < MIN_TMUX:
        return Check("tmux", False, f"{text} at {found}; tmux >= 3.2 is required (respawn -e)")
    return Check("tmux", True, f"{text} ({found})")


# -- config, binaries, canaries -------------------------------------------------------------------


def check_config(
    config_path: Path, environ: Mapping[str, str]
) -> tuple[Config | None, list[Check]]:
    try:
        config = load_config(config_path, environ)
    except ConfigError as err:
        return None, [Check("config", False, line) for line in err.errors]
    enabled = len(config.enabled_agents())
    return config, [
        Check("config", True, f"{config.path}: {len(config.agents)} agents, {enabled} enabled")
    ]


def _version(runtime_name: str, bin: str) -> tuple[bool, str]:
    try:
        return True, get_runtime(runtime_name).probe_version(bin)
    except (RuntimeError, OSError, subprocess.SubprocessError) as err:
        return False, str(err)


def check_binaries(
    config: Config, environ: Mapping[str, str]
) -> tuple[list[Check], list[AgentConfig]]:
    """Resolve each enabled agent's binary like the reconciler does (its PATH, its env)."""
    checks: list[Check] = []
    usable: list[AgentConfig] = []
    versions: dict[str, tuple[bool, str]] = {}  # agents usually share a binary: probe it once
    for agent in config.enabled_agents():
        ctx = launch_context(config, agent, environ)
        bin = ctx.bin
        if os.path.sep not in bin:
            detail = f"{bin!r} not found on the agent's PATH"
            checks.append(Check("binary", False, detail, agent.slug))
            continue
        if not os.path.isfile(bin) or not os.access(bin, os.X_OK):
            what = "is not an executable file" if os.path.exists(bin) else "does not exist"
            checks.append(Check("binary", False, f"{bin} {what}", agent.slug))
            continue
        if bin not in versions:
            versions[bin] = _version(agent.runtime, bin)
        ok, version = versions[bin]
        detail = f"{agent.runtime} {version} ({bin})" if ok else f"{bin}: {version}"
        checks.append(Check("binary", ok, detail, agent.slug))
        if ok:
            checks.append(version_check(agent.slug, agent.runtime, version))
            usable.append(agent)
    return checks, usable


def version_check(slug: str, runtime_name: str, version: str) -> Check:
    """The agent's CLI version against the tested set (:mod:`runtimes.tested`): outside it is
    a warning, not a failure, since releases so far only added fields; run the suite against it
    (``bash tests/run.sh --latest-clis``) before relying on it."""
    found = normalize(version) or version
    tested = ", ".join(tested_versions(runtime_name)) or "none"
    if is_tested(runtime_name, version):
        return Check("cli version", True, f"{runtime_name} {found}: tested", slug)
    detail = f"{runtime_name} {found} is not a tested version (tested: {tested})"
    return Check("cli version", True, detail, slug, warning=True)


def _known_session_ids(state_dir: Path) -> dict[str, str]:
    """The runtime session ids the runner recorded, so the canary plans a resume like it would."""
    db = paths.db_path(state_dir)
    if not db.exists():
        return {}
    try:
        store = Store(db, readonly=True)
        try:
            return {r.slug: r.runtime_session_id for r in store.agents() if r.runtime_session_id}
        finally:
            store.close()
    except sqlite3.Error:
        return {}


def _plan(agent: AgentConfig, ctx: LaunchContext) -> tuple[Canary, dict[str, str]] | Check:
    """Prepare and plan exactly as ``Reconciler._launch`` does, then derive the canary."""
    runtime = get_runtime(agent.runtime)
    try:
        runtime.prepare(ctx)  # pre-answers dialogs outside the work tree, creates CODEX_HOME
        plan = runtime.plan_launch(ctx)
        canary = runtime.canary(plan)
    except (OSError, ValueError) as err:
        return Check("canary", False, f"cannot plan the launch: {err}", agent.slug)
    env = {**ctx.env, **plan.env, "KANBAN_SESSION_ID": ctx.agent_id, "AGENTBRIDGE_SLUG": ctx.slug}
    return canary, env


def check_canaries(
    agents: list[AgentConfig], config: Config, state_dir: Path, environ: Mapping[str, str]
) -> list[Check]:
    """Run each agent's CLI with its exact launch flags (see :mod:`runtimes.canary`)."""
    known = _known_session_ids(state_dir)
    hook = hook_command()
    checks: dict[str, Check] = {}
    jobs: list[tuple[str, Canary, dict[str, str], Path]] = []
    for agent in agents:  # prepare() writes CLI config files: one agent at a time
        ctx = launch_context(
            config, agent, environ, known_session_id=known.get(agent.slug), hook_command=hook
        )
        planned = _plan(agent, ctx)
        if isinstance(planned, Check):
            checks[agent.slug] = planned
        else:
            jobs.append((agent.slug, *planned, ctx.workdir))

    def run(job: tuple[str, Canary, dict[str, str], Path]) -> Check:
        slug, canary, env, cwd = job
        result = run_canary(canary, env, cwd)
        warned = "; warnings: " + " / ".join(result.warnings) if result.warnings else ""
        return Check("canary", result.ok, result.detail + warned, slug)

    if jobs:
        with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
            checks.update((c.agent or "", c) for c in pool.map(run, jobs))
    return [checks[a.slug] for a in agents if a.slug in checks]


# -- state dir ------------------------------------------------------------------------------------


def check_state_dir(state_dir: Path) -> list[Check]:
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=state_dir, prefix=".doctor-") as fh:
            fh.write(b"ok")
            fh.flush()
    except OSError as err:
        return [Check("state dir", False, f"{state_dir} is not writable: {err}")]
    checks = [Check("state dir", True, f"{state_dir} is writable")]
    try:
        with (
            tempfile.TemporaryDirectory(dir=state_dir, prefix=".doctor-") as tmp,
            closing(sqlite3.connect(Path(tmp) / "probe.db")) as db,
        ):
            db.execute("PRAGMA journal_mode=WAL")  # as the Store does: needs shared memory
            db.execute("CREATE TABLE t (x)")
            db.commit()
        detail = "SQLite can write in the state dir"
        main_db = paths.db_path(state_dir)
        if main_db.exists():
            with sqlite3.connect(f"file:{main_db}?mode=ro", uri=True, timeout=5) as conn:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            detail += f"; {main_db.name} opens (schema v{version})"
        checks.append(Check("sqlite", True, detail))
    except (sqlite3.Error, OSError) as err:
        checks.append(Check("sqlite", False, f"SQLite in {state_dir}: {err}"))
    return checks


# -- all -------------------------------------------------------------------------------------------
