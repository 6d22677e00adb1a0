"""How long the fleet is blind after an agent dies: kill -> relaunched and ready for input.

The real runner (``agentbridge run``) supervises a real Claude Code in tmux (fake Anthropic
server on loopback). Three ways to die, each repeated: the CLI process is SIGKILLed, the whole
tmux session is killed, or the CLI exits but a shell survives in its pane. Recovery ends when
the runner's status shows a new live CLI process and its input prompt is on screen.

Run: ``python bench/recovery.py [--rounds 3]``; last line: ``kill_cli_s= kill_session_s=
shell_left_s= max_s=`` (medians, and the worst single recovery).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from bridge.devtools import clis
from bridge.devtools.fake_anthropic import FakeAnthropic
from runtimes.claude import ClaudeRuntime


def wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    claude = clis.ensure("claude")
    root = Path(tempfile.mkdtemp(prefix="ab-recovery-bench-"))
    sock = f"ab-bench-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, AGENTBRIDGE_HOME=str(root / "state"), AGENTBRIDGE_TMUX_SOCKET=sock)

    def tmux(*a: str) -> str:
        return subprocess.run(["tmux", "-L", sock, *a], capture_output=True, text=True).stdout

    def status() -> dict[str, Any]:
        out = subprocess.run(
            [sys.executable, "-m", "bridge", "status", "--json"],
            env=env,
            capture_output=True,
            text=True,
        ).stdout
        rows = json.loads(out or "[]")
        return rows[0] if rows else {}

    def recovered(old_pid: int) -> bool:
        s = status()
        screen = tmux("capture-pane", "-p", "-t", "=rec:").lower()
        return bool(
            s.get("alive")
            and s.get("pid") != old_pid
            and "bypass permissions" in screen
            and "esc to interrupt" not in screen
        )

    with FakeAnthropic() as model:
        work = root / "work"
        work.mkdir()
        subprocess.run(["git", "init", "-q", str(work)], check=True)
        # Backoff (nearly) off: the default policy restarts the first failure at once and backs off
        # after; repeated kills here would otherwise measure the backoff, not the recovery.
        config = {
            "launch_stagger_seconds": 0,
            "restart": {
                "max_failures": 1000,
                "backoff_initial_seconds": 0.01,
                "backoff_max_seconds": 0.01,
            },
            "agents": [
                {
                    "slug": "rec",
                    "workdir": str(work),
                    "bin": str(claude),
                    "env": ClaudeRuntime().offline(root / "home", model.url)[0],
                }
            ],
        }
        (root / "agents.yaml").write_text(yaml.safe_dump(config))
        env["AGENTBRIDGE_CONFIG"] = str(root / "agents.yaml")
        runner = subprocess.Popen(
            [sys.executable, "-m", "bridge", "run", "--config", str(root / "agents.yaml")],
            env=env,
            stdout=(root / "runner.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        results: dict[str, list[float]] = {"kill_cli": [], "kill_session": [], "shell_left": []}
        try:
            wait(lambda: recovered(-1), 120, "first launch")
            for _ in range(args.rounds):
                for kind in results:
                    pid = int(status()["pid"])
                    t0 = time.monotonic()
                    if kind == "kill_cli":
                        os.kill(pid, signal.SIGKILL)
                    elif kind == "kill_session":
                        tmux("kill-session", "-t", "=rec")
                    else:
                        tmux("respawn-pane", "-k", "-t", "=rec:", "bash")
                    wait(partial(recovered, pid), 120, f"recovery after {kind}")
                    results[kind].append(time.monotonic() - t0)
        finally:
            runner.terminate()
            runner.wait(timeout=30)
            tmux("kill-server")
    for kind, values in results.items():
        print(f"{kind}: {' '.join(f'{v:.2f}' for v in values)} s")
    worst = max(v for values in results.values() for v in values)
    medians = " ".join(f"{k}_s={statistics.median(v):.2f}" for k, v in results.items())
    print(f"{medians} max_s={worst:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
