"""The access part of ``agentbridge doctor``: who can steer each agent.

One finding per agent, so a fleet's report says plainly which agents nobody can steer from Slack
(fail closed: no ``allowed_users``) and which are open to everyone in their channel (the
``access: channel-members`` opt-in). Both are reported as ok: they are choices, not faults;
the detail says what to set to change them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bridge.config import access
from bridge.config.model import Config
from bridge.doctor.check import Check
from bridge.doctor.slack import uses_slack


def check_access(
    config: Config | None, environ: Mapping[str, str], state_dir: Path | None = None
) -> list[Check]:
    """Judged by the backend the runner really uses (:func:`uses_slack`), not only by this
    shell's environment: the demo's runner has the emulator's tokens, its doctor has none."""
    if config is None:
        return []
    slack = uses_slack(environ, state_dir)
    return [
        Check("access", True, access.describe(config, agent, slack=slack), agent=agent.slug)
        for agent in config.agents
    ]
