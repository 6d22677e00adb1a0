"""Is the agent's CLI really running in its pane?

A live pane is not a live agent: a person may have attached and quit the CLI, leaving a shell,
or a wrapper may have outlived it. So liveness is decided on the process tree: the pane's own
process or one of its descendants must be the runtime's CLI.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil

from bridge.fleet.tmux import PaneState
from runtimes import Runtime


@dataclass(frozen=True, slots=True)
class Liveness:
    alive: bool
    pid: int | None
    reason: str


def check(pane: PaneState | None, runtime: Runtime, bin: str) -> Liveness:
    if pane is None:
        return Liveness(False, None, "no tmux session")
    if pane.dead:
        return Liveness(False, None, f"exited with status {pane.dead_status}")
    if pane.pid is None:
        return Liveness(False, None, "pane has no process")
    try:
        root = psutil.Process(pane.pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return Liveness(False, None, "pane process gone")
    for proc in tree:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if runtime.is_agent_process(proc.cmdline(), bin):
                return Liveness(True, proc.pid, "running")
        except psutil.Error:
            continue
    return Liveness(False, None, f"{runtime.name} not running in the pane ({pane.command})")
