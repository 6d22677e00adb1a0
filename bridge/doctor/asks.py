"""Whether each ``permissions: ask`` agent can really ask: its CLI version and its flags.

``permissions: ask`` relays approvals through the CLI's ``PermissionRequest`` hook; a CLI
older than the first version seen with that hook (see ``ask_support`` in ``runtimes/``) would
run without asking anyone or wait forever in its pane, and an extra bypass flag in ``args``
would silently turn the approvals off. Both are refused with one line naming the agent, by
``agentbridge validate`` (which then exits 1) and by ``doctor``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

from bridge.config.model import Config
from bridge.doctor.check import Check
from bridge.fleet.launch import launch_context
from runtimes import get_runtime


def ask_problems(config: Config, environ: Mapping[str, str]) -> dict[str, str]:
    """slug -> why ``permissions: ask`` cannot work for it (only ask agents that fail)."""
    problems: dict[str, str] = {}
    versions: dict[str, str | None] = {}
    for agent in config.enabled_agents():
        if agent.permissions != "ask":
            continue
        runtime = get_runtime(agent.runtime)
        conflict = runtime.ask_conflict(agent.effective_args(config))
        if conflict:
            problems[agent.slug] = conflict
            continue
        bin = launch_context(config, agent, environ).bin
        if bin not in versions:
            try:
                versions[bin] = runtime.probe_version(bin)
            except (RuntimeError, OSError, subprocess.SubprocessError):
                versions[bin] = None  # the binary check reports that
        support = runtime.ask_support(versions[bin])
        if not support.approvals:
            problems[agent.slug] = support.why_not
    return problems


def describe(config: Config, slug: str, why: str) -> str:
    return f"{config.path}: agent {slug!r}: permissions: ask cannot work: {why}"


def check_asks(config: Config | None, environ: Mapping[str, str]) -> list[Check]:
    if config is None:
        return []
    problems = ask_problems(config, environ)
    checks: list[Check] = []
    for agent in config.enabled_agents():
        if agent.permissions != "ask":
            continue
        why = problems.get(agent.slug)
        if why:
            detail = describe(config, agent.slug, why)
            checks.append(Check("permissions", False, detail, agent.slug))
        else:
            detail = "ask: approvals are relayed to its channel as buttons"
            checks.append(Check("permissions", True, detail, agent.slug))
    return checks
