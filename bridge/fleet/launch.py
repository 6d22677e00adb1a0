"""An agent's launch context: the environment, binary, model and resume settings it starts with.

Shared by the reconciler (to launch), the mirror (to find transcripts), ``status`` and
``doctor``, so all four agree on what the agent runs.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from bridge.config.model import AgentConfig, Config
from runtimes import LaunchContext, get_runtime
from runtimes.asks import hook_timeout

#: Variables never passed into an agent's pane: the runner's own Slack credentials, its
#: database URL (which carries the password: with it an agent, or a prompt-injected reviewer,
#: could insert routed events as any user), and tmux's variables from a runner that was itself
#: started inside tmux. The runner takes them out of its own environment at start.
PRIVATE_ENV = frozenset(
    {"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "AGENTBRIDGE_DATABASE_URL", "TMUX", "TMUX_PANE"}
)
#: libpq's own variables (``PGPASSWORD``, ``PGPASSFILE``, ``PGHOST``, ``PGSERVICE``...) say how
#: to reach and log into the runner's database: not inherited by agents either. They stay in
#: the runner's environment (libpq reads them at every reconnect); an agent that needs its own
#: database gets these through its ``env:`` in agents.yaml.
PRIVATE_PREFIX = "PG"


def private(name: str) -> bool:
    """Whether a runner environment variable stays out of agents' environments."""
    return name in PRIVATE_ENV or name.startswith(PRIVATE_PREFIX)


def agent_env(config: Config, agent: AgentConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """The whole environment an agent runs with: runner env (less :func:`private` names),
    runtime defaults, agent env."""
    env = {k: v for k, v in environ.items() if not private(k)}
    env.update(agent.effective_env(config))
    return env


def launch_context(
    config: Config,
    agent: AgentConfig,
    environ: Mapping[str, str],
    *,
    known_session_id: str | None = None,
    hook_command: str | None = None,
) -> LaunchContext:
    runtime = get_runtime(agent.runtime)
    env = agent_env(config, agent, environ)
    bin = agent.effective_bin(config) or runtime.default_bin
    resolved = shutil.which(bin, path=env.get("PATH")) if os.path.sep not in bin else bin
    return LaunchContext(
        slug=agent.slug,
        workdir=Path(agent.workdir),
        bin=resolved or bin,
        env=env,
        model=agent.effective_model(config),
        extra_args=tuple(agent.effective_args(config)),
        resume=agent.resume and not agent.ephemeral,  # a one-shot agent always starts fresh
        known_session_id=known_session_id,
        hook_command=hook_command,
        permissions=agent.permissions,
        permission_mode=agent.permission_mode,
        ask_timeout_s=hook_timeout(agent.answers.wait_seconds()),
        ask_hook=agent.answers.via == "hook",
    )
