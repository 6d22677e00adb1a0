"""One real runner driving one real Claude Code over the Slack emulator, for the benches that
measure a person's action in Slack to its effect at the model (steer, question answers).

Shared so each bench keeps only its own probe loop: the emulator, the fake model, an agent
allowed for one person, the runner started as ``python -m bridge run`` with the Slack tokens,
waiting for the agent to be ready, and a clean stop (runner, then its private tmux server).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bridge.devtools import clis
from bridge.devtools.fake_anthropic import FakeAnthropic
from bridge.devtools.slack_emulator import SlackEmulator
from runtimes.claude import ClaudeRuntime


def wait(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.002) -> Any:
    """Poll ``predicate`` until it is truthy (its value) or give up loudly (a bench, not a test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"timed out waiting for {what}")


def runner_env(root: Path, socket: str, slack: SlackEmulator) -> dict[str, str]:
    """The environment a benchmark's ``agentbridge run`` gets: its own state dir and tmux
    socket, and the emulator's tokens and URL."""
    return dict(
        os.environ,
        AGENTBRIDGE_HOME=str(root / "state"),
        AGENTBRIDGE_TMUX_SOCKET=socket,
        SLACK_BOT_TOKEN=slack.bot_token,
        SLACK_APP_TOKEN=slack.app_token,
        SLACK_API_URL=slack.api_url,
    )


@dataclass
class Bench:
    root: Path
    slack: SlackEmulator
    model: FakeAnthropic
    user: str
    channel: str

    def log(self) -> str:
        return (self.root / "runner.log").read_text()

    def turns_ended(self) -> int:
        return self.log().count("working -> idle")

    def wait_turn_after(self, before: int, what: str) -> None:
        wait(lambda: self.turns_ended() > before, 60, what, interval=0.02)


@contextmanager
def claude_over_slack(prefix: str) -> Iterator[Bench]:
    """The runner and one ready Claude agent ``bench`` in ``#agent-bench``; stopped on exit."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(var, None)
    claude = clis.ensure("claude")
    root = Path(tempfile.mkdtemp(prefix=prefix))
    socket = f"ab-bench-{uuid.uuid4().hex[:8]}"
    with SlackEmulator() as slack, FakeAnthropic() as model:
        user = slack.add_user("bench", "Bench")
        channel = slack.add_channel("agent-bench", members=[user])
        work = root / "work"
        work.mkdir()
        subprocess.run(["git", "init", "-q", str(work)], check=True)
        agent = {
            "slug": "bench",
            "workdir": str(work),
            "bin": str(claude),
            "channel": "#agent-bench",
            "allowed_users": [user],
            "env": ClaudeRuntime().offline(root / "home", model.url)[0],
        }
        config = {"launch_stagger_seconds": 0, "agents": [agent]}
        (root / "agents.yaml").write_text(yaml.safe_dump(config))
        env = runner_env(root, socket, slack)
        log = (root / "runner.log").open("wb")
        runner = subprocess.Popen(
            [sys.executable, "-m", "bridge", "run", "--config", str(root / "agents.yaml")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        bench = Bench(root, slack, model, user, channel)
        try:
            wait(lambda: "bench: starting -> idle" in bench.log(), 120, "the agent", 0.05)
            yield bench
        finally:
            runner.terminate()
            runner.wait(timeout=30)
            subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
