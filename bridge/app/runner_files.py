"""The runner's files in its state dir: the lock that keeps one runner per state dir (two would
double-post every message) and ``runner.json``, which tells ``status``/``send`` where the fleet is.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO

from bridge.errors import AgentbridgeError
from runtimes.jsonfile import atomic_write_text


class AlreadyRunning(AgentbridgeError, RuntimeError):
    pass


def acquire_runner_lock(state_dir: Path) -> IO[str]:
    handle = (state_dir / "runner.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        other = handle.read().strip() or "?"
        handle.close()
        raise AlreadyRunning(
            f"another agentbridge run (pid {other}) is using {state_dir}"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def write_runner_info(state_dir: Path, config_path: Path, socket: str | None) -> None:
    """What ``status`` / ``send`` need to find this fleet without the runner's environment."""
    info = {"pid": os.getpid(), "config": str(config_path.resolve()), "tmux_socket": socket}
    atomic_write_text(state_dir / "runner.json", json.dumps(info))


def read_runner_info(state_dir: Path) -> dict[str, str | None]:
    try:
        data = json.loads((state_dir / "runner.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def runner_alive(state_dir: Path) -> bool:
    """Whether a runner holds this state dir's lock right now."""
    path = state_dir / "runner.lock"
    if not path.exists():
        return False
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
