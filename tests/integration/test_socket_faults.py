"""Socket Mode faults during steady traffic, against the real runner (real slack-bolt/slack_sdk,
a real claude agent): `refresh_requested` (Slack's routine rotation), `link_disabled` then
re-enabled, `too_many_websockets`, unacked envelopes redelivered, and a deaf connection. In each,
every message reaches the agent's queue exactly once, and the emulator's connection history
shows no two of the runner's connections live at once (the definition of "live" is in
`bridge.devtools.slack_emulator_conns`).

Traffic is a thread posting one message every `PACE` seconds until told to stop: that is the
traffic's rate, not a wait; every wait in the tests is on a condition.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
from collections.abc import Callable, Iterator

import pytest

from bridge.devtools.slack_emulator import SlackEmulator
from tests.conftest import Fleet, wait_until
from tests.integration.test_runner import wait_ready

pytestmark = pytest.mark.integration
PACE = 0.15
"""Seconds between two posted messages (about 7 a second: a busy channel)."""


class Traffic:
    """Posts `note N` into `channel` as `user`, until `stop`; remembers each message's key."""

    def __init__(self, slack: SlackEmulator, user: str, channel: str) -> None:
        self.slack, self.user, self.channel = slack, user, channel
        self.keys: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            ts = self.slack.post_as_user(self.user, self.channel, f"note {len(self.keys)}")
            self.keys.append(f"slack:{self.channel}:{ts}")
            self._stop.wait(PACE)

    def posted(self) -> int:
        return len(self.keys)

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(timeout=30)
        return list(self.keys)


def queued(fleet: Fleet, slug: str) -> list[str]:
    with sqlite3.connect(fleet.state_dir / "state.db", timeout=10) as conn:
        rows = conn.execute("SELECT dedupe_key FROM prompt_queue WHERE slug = ?", (slug,))
        return [str(r[0]) for r in rows.fetchall()]


@pytest.fixture
def emulator() -> Iterator[SlackEmulator]:
    """Slack's 3 s ack timeout, but retries without end (a test fails by waiting, never by
    Slack giving up on a message mid-fault), and a short grace after `disconnect`."""
    with SlackEmulator(max_retries=10_000, disconnect_grace=0.5, rate_limit=None) as emu:
        yield emu


def run_with_fault(
    fleet: Fleet, slack: SlackEmulator, slug: str, fault: Callable[[Traffic], None]
) -> None:
    """Start a runner on `slug`'s channel, start traffic, let `fault` inject and wait for its
    effect, run some more traffic, then check: each message queued once, no overlap."""
    alice = slack.add_user("alice", "Alice")
    channel = slack.add_channel(f"agent-{slug}", members=[alice])
    fleet.use_slack(slack)
    fleet.slack_env["AGENTBRIDGE_SLACK_DEAF_PROBE_SECONDS"] = "1"
    fleet.agent(slug, "claude", channel=f"#agent-{slug}", allowed_users=[alice])
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, slug, "claude")
    wait_until(lambda: slack.connection_count() >= 1, 60, "the socket connection")
    traffic = Traffic(slack, alice, channel)
    try:
        wait_until(lambda: len(queued(fleet, slug)) >= 3, 60, "traffic flowing")
        fault(traffic)
        after = traffic.posted()
        wait_until(lambda: len(set(queued(fleet, slug))) >= after + 3, 180, "traffic after")
    finally:
        keys = traffic.stop()
    wait_until(lambda: set(queued(fleet, slug)) >= set(keys), 180, "every message queued")
    assert sorted(queued(fleet, slug)) == sorted(keys), "lost or duplicated"
    history = slack.connection_history(slack.app_token)
    assert len(history) >= 2, "the fault never made the runner reconnect"
    assert slack.live_overlaps(slack.app_token) == [], f"two live connections: {history}"


def test_refresh_requested_again_and_again(fleet: Fleet) -> None:
    with SlackEmulator(
        max_retries=10_000, disconnect_grace=0.5, rate_limit=None, refresh_after=1.5
    ) as slack:

        def fault(traffic: Traffic) -> None:
            wait_until(lambda: len(slack.connection_history()) >= 4, 120, "three rotations")

        run_with_fault(fleet, slack, "rr", fault)
        told = [r["disconnects"] for r in slack.connection_history()]
        assert told.count(["refresh_requested"]) >= 3


def test_link_disabled_then_enabled(fleet: Fleet, emulator: SlackEmulator) -> None:
    slack = emulator

    def fault(traffic: Traffic) -> None:
        slack.disable_socket_mode()
        wait_until(lambda: slack.connection_count() == 0, 60, "every socket closed")
        during = traffic.posted()
        wait_until(lambda: traffic.posted() >= during + 5, 60, "messages while off")
        slack.enable_socket_mode()
        wait_until(lambda: slack.connection_count() == 1, 120, "reconnected once back on")

    run_with_fault(fleet, slack, "ld", fault)
    assert "link_disabled" in fleet.log_text()


def test_too_many_websockets(fleet: Fleet, emulator: SlackEmulator) -> None:
    """The app is at its limit (connections Slack still counts for it, python-slack-sdk
    #1940's ghosts): the runner's reconnects are turned away until a slot frees up, and it
    backs off between them (at least the first backoff, 0.5 s: a lower bound its own wait
    guarantees, not a deadline) instead of hammering apps.connections.open."""
    slack = emulator

    def refused() -> int:
        return sum(1 for r in slack.connection_history() if r["refused"])

    def fault(traffic: Traffic) -> None:
        slack.limit_connections(0)
        slack.disconnect("refresh_requested")
        wait_until(lambda: refused() >= 3, 120, "reconnects turned away")
        slack.limit_connections(10)
        wait_until(lambda: slack.connection_count() == 1, 120, "reconnected once a slot freed")

    run_with_fault(fleet, slack, "tm", fault)
    times = [r["opened_at"] for r in slack.connection_history() if r["refused"]]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g >= 0.5 for g in gaps), f"reconnected at once, again and again: {gaps}"


def test_unacked_envelopes_redelivered(fleet: Fleet) -> None:
    """Acks lost on the way, so Slack sends those envelopes again (`retry_attempt` 1,
    `timeout`), some on a new connection; acked envelopes sent again too."""
    with SlackEmulator(
        max_retries=10_000, ack_timeout=0.5, disconnect_grace=0.5, rate_limit=None
    ) as slack:

        def retried() -> int:
            return sum(1 for d in slack.deliveries("events_api") if d["attempts"] > 1)

        def fault(traffic: Traffic) -> None:
            slack.lose_acks(8)
            wait_until(lambda: slack.hub.acks_to_lose == 0, 120, "eight acks lost")
            slack.disconnect("refresh_requested")  # their retries mostly land on the next one
            wait_until(lambda: retried() >= 8, 120, "envelopes redelivered")
            for _ in range(3):
                slack.redeliver_last()
            wait_until(lambda: len(slack.connection_history()) >= 2, 60, "a new connection")
            slack.redeliver_last()

        run_with_fault(fleet, slack, "ua", fault)


def test_a_deaf_connection_is_noticed_and_replaced(fleet: Fleet, emulator: SlackEmulator) -> None:
    slack = emulator
    deaf: list[str] = []

    def fault(traffic: Traffic) -> None:
        deaf.append(slack.deafen())
        wait_until(
            lambda: any(r["closed_seq"] for r in slack.connection_history() if r["id"] in deaf),
            120,
            "the deaf connection replaced",
        )

    run_with_fault(fleet, slack, "dc", fault)
    assert "deaf" in fleet.log_text()
    moved = [d for d in slack.deliveries("events_api") if len(set(d["connections"])) > 1]
    assert any(deaf[0] in d["connections"] for d in moved), "no retry reached the new one"
    assert [r["deaf"] for r in slack.connection_history()].count(True) == 1
