"""Slack message received -> prompt confirmed by the runtime, through the whole real stack.

The loopback Slack emulator, the real runner (``agentbridge run`` as a subprocess, SlackBackend
over Socket Mode), a real Claude Code in tmux against the fake Anthropic server. Each probe is a
human message posted in the agent's channel; it counts as confirmed when the runner adds ✅ to
it, which it does when Claude's UserPromptSubmit hook (or the transcript) reports the prompt.
Probes go one at a time, each once the agent is idle again.

Run: ``python bench/steer_latency.py [--messages 20]``; last line: ``p50_ms= p90_ms= max_ms=``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from bridge.devtools import clis
from bridge.devtools.fake_anthropic import FakeAnthropic
from bridge.devtools.slack_emulator import SlackEmulator
from runtimes.claude import ClaudeRuntime


def wait(predicate: Any, timeout: float, what: str, interval: float = 0.002) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"timed out waiting for {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20)
    args = parser.parse_args()
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(var, None)
    claude = clis.ensure("claude")
    root = Path(tempfile.mkdtemp(prefix="ab-steer-bench-"))
    socket = f"ab-bench-{uuid.uuid4().hex[:8]}"
    runner = None
    with SlackEmulator() as slack, FakeAnthropic() as model:
        user = slack.add_user("bench", "Bench")
        channel = slack.add_channel("agent-bench", members=[user])
        work = root / "work"
        work.mkdir()
        subprocess.run(["git", "init", "-q", str(work)], check=True)
        config = {
            "launch_stagger_seconds": 0,
            "agents": [
                {
                    "slug": "bench",
                    "workdir": str(work),
                    "bin": str(claude),
                    "channel": "#agent-bench",
                    "allowed_users": [user],
                    "env": ClaudeRuntime().offline(root / "home", model.url)[0],
                }
            ],
        }
        (root / "agents.yaml").write_text(yaml.safe_dump(config))
        env = dict(
            os.environ,
            AGENTBRIDGE_HOME=str(root / "state"),
            AGENTBRIDGE_TMUX_SOCKET=socket,
            SLACK_BOT_TOKEN=slack.bot_token,
            SLACK_APP_TOKEN=slack.app_token,
            SLACK_API_URL=slack.api_url,
        )
        log = (root / "runner.log").open("wb")
        runner = subprocess.Popen(
            [sys.executable, "-m", "bridge", "run", "--config", str(root / "agents.yaml")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait(
                lambda: "bench: starting -> idle" in (root / "runner.log").read_text(),
                120,
                "the agent to be ready",
                interval=0.05,
            )
            latencies = []
            for i in range(args.messages):
                before = (root / "runner.log").read_text().count("working -> idle")
                t0 = time.monotonic()
                ts = slack.post_as_user(user, channel, f"latency probe {i}")
                wait(
                    lambda t=ts: "white_check_mark" in slack.reactions(channel, t),
                    60,
                    f"probe {i} confirmed",
                )
                latencies.append((time.monotonic() - t0) * 1000)
                wait(
                    lambda b=before: (root / "runner.log").read_text().count("working -> idle") > b,
                    60,
                    f"probe {i}'s turn to end",
                    interval=0.02,
                )
        finally:
            runner.terminate()
            runner.wait(timeout=30)
            subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
    latencies.sort()
    p90 = latencies[max(0, int(len(latencies) * 0.9) - 1)]
    print(f"probes (ms): {' '.join(f'{x:.0f}' for x in latencies)}")
    print(
        f"p50_ms={statistics.median(latencies):.0f} p90_ms={p90:.0f} "
        f"max_ms={latencies[-1]:.0f} messages={len(latencies)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
