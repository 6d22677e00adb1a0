"""Where the runner keeps its things, resolved the one way the contract says.

State dir: ``--state-dir``, else ``AGENTBRIDGE_HOME``, else ``~/.agentbridge``.
tmux server: ``AGENTBRIDGE_TMUX_SOCKET`` (a ``-L`` name), else the config's ``tmux_socket``,
else tmux's default server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def state_dir(explicit: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if explicit:
        path = Path(explicit)
    elif env.get("AGENTBRIDGE_HOME"):
        path = Path(env["AGENTBRIDGE_HOME"])
    else:
        path = Path("~/.agentbridge")
    path = path.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def tmux_socket(
    configured: str | None = None, environ: Mapping[str, str] | None = None
) -> str | None:
    env = os.environ if environ is None else environ
    return env.get("AGENTBRIDGE_TMUX_SOCKET") or configured or None


def db_path(root: Path) -> Path:
    return root / "state.db"


def locks_dir(root: Path) -> Path:
    path = root / "locks"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
