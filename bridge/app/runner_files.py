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


def write_runner_info(
    state_dir: Path, config_path: Path, socket: str | None, chat: str = "console"
) -> None:
    """What ``status`` / ``send`` need to find this fleet without the runner's environment,
    and for ``doctor`` the Slack Web API base it was given (the demo's loopback emulator) and
    the chat backend it uses (``slack`` | ``console``: who may steer depends on it)."""
    info = {
        "pid": os.getpid(),
        "config": str(config_path.resolve()),
        "tmux_socket": socket,
        "slack_api_url": os.environ.get("SLACK_API_URL"),
        "chat": chat,
    }
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


def pid_alive(pid: object) -> bool:
    """Whether a process with this pid exists (signal 0 probes without sending anything)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def runner_note(state_dir: Path) -> str:
    """One line for ``status``: whether a runner serves this state dir, and if not, why the
    agents are still shown (tmux and the state store are read directly)."""
    info = read_runner_info(state_dir)
    pid = info.get("pid")
    if runner_alive(state_dir):
        return f"runner: pid {pid or '?'}, state dir {state_dir}, config {info.get('config')}"
    if info:
        return (
            f"no runner is running for {state_dir} (stale runner.json from pid {pid or '?'}); "
            "agents as tmux and the state store show them"
        )
    return f"no runner is running for {state_dir}; agents as tmux and the state store show them"


def remove_stale_runner_info(state_dir: Path) -> bool:
    """Delete ``runner.json`` when no runner holds the state dir's lock (the demo's exit)."""
    path = state_dir / "runner.json"
    if not path.exists() or runner_alive(state_dir):
        return False
    path.unlink(missing_ok=True)
    return True


# -- the demo's pointer ---------------------------------------------------------------------------

DEMO_POINTER = "demo.json"
"""In the default state dir, while ``agentbridge demo`` runs: where the demo's state dir is, so
plain ``status`` / ``send`` / ``attach`` / ``doctor`` find the demo without ``--state-dir``."""


def write_demo_pointer(home: Path, demo_state: Path) -> Path | None:
    """Point ``home`` (the default state dir) at the demo's; None when they are the same."""
    if home.resolve() == demo_state.resolve():
        return None
    path = home / DEMO_POINTER
    atomic_write_text(path, json.dumps({"state_dir": str(demo_state), "pid": os.getpid()}))
    return path


def clear_demo_pointer(home: Path) -> None:
    """Remove the pointer if it is this process's (a second demo may have replaced it)."""
    path = home / DEMO_POINTER
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if isinstance(data, dict) and data.get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def follow_demo(state_dir: Path) -> Path:
    """``state_dir``, or the running demo's state dir when ``state_dir`` has no runner of its
    own and holds a pointer to a demo whose runner is up."""
    if runner_alive(state_dir):
        return state_dir
    try:
        data = json.loads((state_dir / DEMO_POINTER).read_text())
        target = Path(str(data["state_dir"]))
    except (OSError, ValueError, KeyError, TypeError):
        return state_dir
    return target if runner_alive(target) else state_dir
