"""Two hosts on one Postgres share one Slack workspace's rate limits: each runner budgets half
of every method, so together they stay within the emulator's per-workspace tiers.

Both runners steer-and-react at once: every steered message gets its receipt reaction
(``reactions.add``, Tier 3: a burst of 10 for the whole workspace). A runner that assumed the
whole budget for itself would spend 8 at once, and two of them 16: the emulator would answer
429. Each taking 1/2 of it, they meet none; nothing is lost or read twice.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Fleet, wait_until
from tests.integration.test_runner import wait_ready
from tests.pg import pg_cluster, pg_url

__all__ = ["pg_cluster", "pg_url"]

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.xdist_group("two_hosts")]

PER_HOST = 2
"""Agents per host."""
NOTES = 7
"""Messages each agent is steered with, all at once (14 reactions wanted per host)."""


def test_two_hosts_together_stay_within_the_workspaces_tiers(
    tmp_path: Path, cli_bins: dict[str, Path], fake_models: tuple[Any, Any], slack: Any, pg_url: str
) -> None:
    alice = slack.add_user("alice", "Alice")
    fleets: dict[str, Fleet] = {}
    channels: dict[str, str] = {}
    specs = []
    for host in ("a", "b"):
        fleet = Fleet(tmp_path / host, f"tiers-{uuid.uuid4().hex[:10]}", cli_bins, fake_models)
        fleet.use_slack(slack)
        fleet.slack_env["AGENTBRIDGE_HOST"] = host
        fleet.slack_env["AGENTBRIDGE_DATABASE_URL"] = pg_url
        fleets[host] = fleet
        for n in range(PER_HOST):
            slug = f"{host}{n}"
            channels[slug] = slack.add_channel(f"agent-{slug}", members=[alice])
            specs.append(
                fleet.agent(slug, channel=f"#agent-{slug}", allowed_users=[alice], host=host)
            )
    try:
        for fleet in fleets.values():
            fleet.agents = list(specs)  # one agents.yaml for both hosts
            fleet.write_config(host_down_after_seconds=3)
            fleet.start_runner()
        for host, fleet in fleets.items():
            for n in range(PER_HOST):
                wait_ready(fleet, f"{host}{n}", "claude")
        wait_until(lambda: slack.hub.open_count() >= 2, 60, "both socket connections")
        for fleet in fleets.values():  # each has seen the other: its budgets are halved
            wait_until(lambda f=fleet: "2 hosts share" in f.log_text(), 60, "the shared budget")
        sent: dict[str, list[str]] = {slug: [] for slug in channels}
        for i in range(NOTES):
            for slug, channel in channels.items():
                sent[slug].append(slack.post_as_user(alice, channel, f"note {i} for {slug}"))
        notes = {f"note {i} for {slug}" for i in range(NOTES) for slug in channels}

        def read() -> Counter[str]:
            prompts = [r.prompt or "" for r in fake_models[0].requests if r.kind == "turn"]
            return Counter(m for p in prompts for m in re.findall(r"note \d+ for \w\d", p))

        wait_until(lambda: set(read()) >= notes, 180, "every note read by its agent")
        wait_until(
            lambda: all(slack.reactions(channels[s], ts) for s in sent for ts in sent[s]),
            180,
            "a receipt reaction on every note",
        )
        assert slack.rate_limited_by_method() == {}, slack.rate_limits()[:5]
        assert set(read().values()) == {1}, "a note read twice"
    finally:
        for fleet in fleets.values():
            fleet.stop_runner()
            if fleet.runner_log.exists():
                print(f"--- {fleet.root.name} ---\n{fleet.log_text()[-3000:]}")
            subprocess.run(
                ["tmux", "-L", fleet.socket, "kill-server"], capture_output=True, check=False
            )
