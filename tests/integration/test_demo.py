"""`agentbridge demo`: the Quickstart's first command, end to end with the real CLIs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import wait_until

pytestmark = pytest.mark.integration


def test_demo_fleet_answers_send_and_stops_on_ctrl_c(tmp_path: Path, cli_bins: object) -> None:
    socket = f"ab-demo-{uuid.uuid4().hex[:8]}"
    state = tmp_path / "demo-state"
    env = dict(os.environ, AGENTBRIDGE_TMUX_SOCKET=socket)
    out = tmp_path / "demo.out"
    with out.open("wb") as sink:
        demo = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "demo", "--state-dir", str(state)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    try:
        wait_until(lambda: "agentbridge demo is running" in out.read_text(), 120, "demo banner")

        def pane(slug: str) -> str:
            return subprocess.run(
                ["tmux", "-L", socket, "capture-pane", "-p", "-t", f"={slug}:"],
                capture_output=True,
                text=True,
            ).stdout.lower()

        wait_until(lambda: "bypass permissions" in pane("demo-claude"), 90, "claude ready")
        wait_until(lambda: "gpt-5" in pane("demo-codex"), 90, "codex ready")
        for slug in ("demo-claude", "demo-codex"):
            sent = subprocess.run(
                [sys.executable, "-m", "bridge.cli", "send", slug, f"hello {slug}"],
                env=dict(env, AGENTBRIDGE_HOME=str(state)),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert sent.returncode == 0, sent.stderr
            wait_until(
                lambda s=slug: f"[{s}] ack: hello {s}" in out.read_text(),
                90,
                f"{slug}'s answer on the demo console",
            )
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) == 0
        left = subprocess.run(
            ["tmux", "-L", socket, "list-sessions"], capture_output=True, text=True
        )
        assert left.stdout.strip() == ""
    finally:
        if demo.poll() is None:
            demo.kill()
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
