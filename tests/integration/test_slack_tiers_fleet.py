"""Twenty real claude agents through the Slack emulator with every method's tier enforced:
steady mirrored lines and steered messages (with their receipt reactions) for all of them at
once meet no 429 for any method, and nothing is lost or duplicated.

Each agent's mirror is driven by appending to its real transcript file (as the CLI would), and
each is steered through Slack (``post_as_user``); the runner's budgets (per channel, the
workspace's posting cap, every method's tier) are the only thing between them and the
emulator's 429s.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runtimes import agent_session_id
from tests.conftest import Fleet, wait_until
from tests.integration.test_mirror_faults import WRITER
from tests.integration.test_runner import wait_ready

pytestmark = pytest.mark.integration

AGENTS = 20
LINES = 12
"""Transcript lines written per agent (one every 0.25 s: steady, not a burst)."""
STEERS = 2
"""Messages each agent is steered with (each gets a receipt reaction or two)."""


def _transcript(spec: dict[str, Any]) -> Path:
    project = re.sub(r"[^A-Za-z0-9]", "-", str(Path(spec["workdir"]).resolve()))
    path = Path(spec["env"]["CLAUDE_CONFIG_DIR"], "projects", project)
    path.mkdir(parents=True, exist_ok=True)
    return path / f"{agent_session_id(spec['slug'])}.jsonl"


def _lines(slack: Any, channel: str) -> list[int]:
    texts = " ".join(str(m.get("text") or "") for m in slack.messages(channel))
    return [int(n) for n in re.findall(r"fault line (\d+)", texts)]


def run_fleet(fleet: Fleet, slack: Any, agents: int = AGENTS) -> dict[str, Any]:
    """Start ``agents`` claude agents on one runner, drive them, wait for every outcome;
    returns what the benchmark reports."""
    alice = slack.add_user("alice", "Alice")
    fleet.use_slack(slack)
    slugs = [f"t{n:02d}" for n in range(agents)]
    channels = {s: slack.add_channel(f"agent-{s}", members=[alice]) for s in slugs}
    specs = {
        s: fleet.agent(s, "claude", channel=f"#agent-{s}", allowed_users=[alice]) for s in slugs
    }
    fleet.write_config()
    fleet.start_runner()
    for slug in slugs:
        wait_ready(fleet, slug, "claude", timeout=240)
    wait_until(lambda: slack.hub.open_count() >= 1, 60, "the socket connection")
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(_transcript(specs[s])), str(LINES), "0.25"]
        )
        for s in slugs
    ]
    steered: dict[str, list[str]] = {s: [] for s in slugs}
    try:
        for round_ in range(STEERS):
            for slug in slugs:
                text = f"steer {slug} {round_}"
                steered[slug].append(slack.post_as_user(alice, channels[slug], text))
    finally:
        for writer in writers:
            writer.wait(timeout=120)
    wait_until(
        lambda: all(len(set(_lines(slack, channels[s]))) >= LINES for s in slugs),
        180,
        "every agent's lines mirrored",
    )
    notes = {f"steer {s} {r}" for s in slugs for r in range(STEERS)}

    def read() -> list[str]:
        prompts = [r.prompt or "" for r in fleet.anthropic.requests if r.kind == "turn"]
        return [m for p in prompts for m in re.findall(r"steer t\d+ \d+", p)]

    wait_until(lambda: set(read()) >= notes, 180, "every steered message read by its agent")
    wait_until(
        lambda: all(slack.reactions(channels[s], ts) for s in slugs for ts in steered[s]),
        180,
        "a receipt reaction on every steered message",
    )
    return {
        "slugs": slugs,
        "channels": channels,
        "read": read(),
        "notes": notes,
        "lines": {s: _lines(slack, channels[s]) for s in slugs},
    }


def test_twenty_agents_under_every_tier_meet_no_429(fleet: Fleet, slack: Any) -> None:
    got = run_fleet(fleet, slack)
    assert slack.rate_limited_by_method() == {}, slack.rate_limits()[:5]
    for slug, numbers in got["lines"].items():
        assert sorted(numbers) == list(range(LINES)), f"{slug}: lost or duplicated lines"
    assert sorted(got["read"]) == sorted(got["notes"]), "a steered message lost or read twice"
    assert "ratelimited" not in fleet.log_text()
