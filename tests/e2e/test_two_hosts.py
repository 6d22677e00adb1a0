"""Two runners on one machine, as two hosts (`a`, `b`: two tmux servers, two state dirs) sharing
one Slack app (the emulator hands each event to one randomly chosen open Socket Mode
connection, as Slack does) and one real Postgres. Each message must reach its agent exactly once
(one queue row on its agent's host, and the model behind the real CLI reads it once), whichever
runner Slack picked; with `a` stopped, `a`'s messages wait in the database and are delivered
once when it returns; and a Postgres restart in the middle of it all (the real server stopped and
started again) loses and duplicates nothing, deafens neither runner for more than 10 s once the
database is back, and never stalls either runner's event loop.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bridge.devtools.pgcluster import Cluster
from tests.conftest import Fleet, wait_until
from tests.pg import pg_cluster, pg_url

__all__ = ["pg_cluster", "pg_url"]

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.xdist_group("two_hosts")]


class Hosts:
    def __init__(self, fleets: dict[str, Fleet], url: str, slack: Any, channels: dict[str, str]):
        self.fleets = fleets
        self.url = url
        self.slack = slack
        self.channels = channels  # slug -> channel id

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return list(conn.execute(query.encode(), params or None).fetchall())

    def model_read(self, pattern: str) -> Counter[str]:
        """How often each match of ``pattern`` was in a prompt the (shared) fake model read."""
        prompts = [r.prompt or "" for r in self.fleets["a"].anthropic.requests if r.kind == "turn"]
        return Counter(m for p in prompts for m in re.findall(pattern, p))

    def queued_keys(self, slug: str) -> list[str]:
        rows = self.sql("SELECT dedupe_key FROM prompt_queue WHERE slug = %s", slug)
        return [str(r[0]) for r in rows]


@pytest.fixture
def hosts(
    tmp_path: Path, cli_bins: dict[str, Path], fake_models: tuple[Any, Any], slack: Any, pg_url: str
) -> Iterator[Hosts]:
    with _two_hosts(tmp_path, cli_bins, fake_models, slack, pg_url) as rig:
        yield rig


@contextmanager
def _two_hosts(
    tmp_path: Path, cli_bins: dict[str, Path], fake_models: tuple[Any, Any], slack: Any, pg_url: str
) -> Iterator[Hosts]:
    alice = slack.add_user("alice", "Alice")
    fleets: dict[str, Fleet] = {}
    sockets = []
    for host in ("a", "b"):
        socket = f"ab-test-{uuid.uuid4().hex[:10]}"
        sockets.append(socket)
        fleet = Fleet(tmp_path / host, socket, cli_bins, fake_models)
        fleet.use_slack(slack)
        fleet.slack_env["AGENTBRIDGE_HOST"] = host
        fleet.slack_env["AGENTBRIDGE_DATABASE_URL"] = pg_url
        fleets[host] = fleet
    channels: dict[str, str] = {}
    specs = []
    for host in ("a", "b"):
        slug = f"{host}1"
        channels[slug] = slack.add_channel(f"agent-{slug}", members=[alice])
        specs.append(
            fleets[host].agent(slug, channel=f"#agent-{slug}", allowed_users=[alice], host=host)
        )
    for fleet in fleets.values():
        fleet.agents = list(specs)  # one agents.yaml for both hosts
        fleet.write_config(host_down_after_seconds=3)
    rig = Hosts(fleets, pg_url, slack, channels)
    rig.alice = alice  # type: ignore[attr-defined]
    try:
        yield rig
    finally:
        for fleet in fleets.values():
            fleet.stop_runner()
            if fleet.runner_log.exists():
                print(f"--- {fleet.root.name} ---\n{fleet.log_text()[-3000:]}")
        for socket in sockets:
            subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)


def _connected(rig: Hosts, count: int) -> None:
    wait_until(lambda: rig.slack.hub.open_count() >= count, 60, f"{count} socket connections")


def test_fifty_messages_each_reach_their_agent_once_whichever_runner_slack_picked(
    hosts: Hosts,
) -> None:
    for fleet in hosts.fleets.values():
        fleet.start_runner()
    _connected(hosts, 2)
    alice = hosts.alice  # type: ignore[attr-defined]
    sent: dict[str, list[str]] = {"a1": [], "b1": []}
    for i in range(50):
        for slug, channel in hosts.channels.items():
            ts = hosts.slack.post_as_user(alice, channel, f"note {i} for {slug}")
            sent[slug].append(f"slack:{channel}:{ts}")
    for slug, keys in sent.items():
        wait_until(
            lambda slug=slug, keys=keys: set(hosts.queued_keys(slug)) >= set(keys),
            120,
            f"every message queued for {slug}",
        )
    for slug, keys in sent.items():
        got = hosts.queued_keys(slug)
        assert sorted(got) == sorted(keys), f"{slug}: lost or duplicated"
    routed = hosts.sql(
        "SELECT target_host, received_by, done_at IS NOT NULL FROM inbound_events"
        " WHERE kind = 'message'"
    )
    assert routed, "Slack never picked the other runner: nothing was routed"
    assert all(target != by for target, by, _ in routed)
    wait_until(
        lambda: all(
            done
            for *_, done in hosts.sql(
                "SELECT target_host, received_by, done_at IS NOT NULL FROM inbound_events"
            )
        ),
        60,
        "every routed event drained",
    )
    # ... and the agents read each one exactly once. Claude folds steers that wait mid-turn into
    # one message, now and then two glued in one block, hence no word boundary in the pattern
    # ("note 1 for a1" still never matches inside "note 10 for a1").
    notes = {f"note {i} for {slug}" for i in range(50) for slug in sent}
    pattern = r"note \d+ for [ab]1"
    wait_until(lambda: set(hosts.model_read(pattern)) >= notes, 180, "every note read by its agent")
    read = hosts.model_read(pattern)
    assert set(read) == notes and set(read.values()) == {1}, f"read twice: {read.most_common(3)}"
    # each host delivers only its own agent's prompts (the queue is scoped per host)
    for host, fleet in hosts.fleets.items():
        other = "b1" if host == "a" else "a1"
        assert f"{other}: delivered" not in fleet.log_text()


def test_a_stopped_hosts_messages_wait_and_arrive_once_when_it_returns(hosts: Hosts) -> None:
    a, b = hosts.fleets["a"], hosts.fleets["b"]
    a.start_runner()
    b.start_runner()
    _connected(hosts, 2)
    channel = hosts.channels["a1"]
    wait_until(lambda: hosts.sql("SELECT host FROM hosts WHERE host = 'a'"), 60, "a's heartbeat")
    assert a.stop_runner() == 0
    wait_until(lambda: hosts.slack.hub.open_count() == 1, 60, "only b connected")
    alice = hosts.alice  # type: ignore[attr-defined]
    keys = [
        f"slack:{channel}:{hosts.slack.post_as_user(alice, channel, f'while a is away {i}')}"
        for i in range(10)
    ]
    # b alone is connected, so a shared file for a1 is surely routed: a's backend fetches it
    body = b"routed-file-5c1e\n"
    ts = hosts.slack.post_files_as_user(alice, channel, [("notes.txt", body)], text="see file")
    keys.append(f"slack:{channel}:{ts}")
    wait_until(
        lambda: (
            len(
                hosts.sql(
                    "SELECT 1 FROM inbound_events WHERE target_host = 'a' AND done_at IS NULL"
                )
            )
            == 11
        ),
        60,
        "b keeps a's messages (and the file's address)",
    )
    assert hosts.queued_keys("a1") == []  # nothing reaches a1 while its host is away

    def down_notes() -> list[str]:
        return [
            str(m.get("text", ""))
            for m in hosts.slack.messages(channel)
            if "has not been heard from" in str(m.get("text", ""))
        ]

    wait_until(down_notes, 60, "the down notice in a1's channel")
    a.start_runner()
    wait_until(lambda: set(hosts.queued_keys("a1")) >= set(keys), 120, "a1's messages delivered")
    assert sorted(hosts.queued_keys("a1")) == sorted(keys)
    [saved] = list((a.state_dir / "inbox" / "a1").iterdir())  # on a's disk, whole
    assert saved.read_bytes() == body and saved.name.endswith("notes.txt")
    [(text,)] = hosts.sql("SELECT text FROM prompt_queue WHERE dedupe_key = %s", keys[-1])
    assert text.startswith("see file") and str(saved) in text
    wait_until(
        lambda: any("is back" in str(m.get("text", "")) for m in hosts.slack.messages(channel)),
        60,
        "the back note",
    )
    assert len(down_notes()) == 1  # reported once, by one of the runners
    # the runner's database URL (password and all) never reaches an agent's process
    [pid] = a.tmux("list-panes", "-t", "=a1", "-F", "#{pane_pid}").split()
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert environ and not any(hosts.url.encode() in v for v in environ)
    assert not any(v.startswith((b"AGENTBRIDGE_DATABASE_URL=", b"PG")) for v in environ)


def test_with_a_wait_limit_messages_older_than_it_are_reported_not_pasted(hosts: Hosts) -> None:
    """``routed_max_wait_minutes``: what waited longer than that for `a` is not pasted when `a`
    returns (a stale instruction hours later would surprise); its sender is told in thread."""
    a, b = hosts.fleets["a"], hosts.fleets["b"]
    for fleet in (a, b):
        fleet.write_config(host_down_after_seconds=3, routed_max_wait_minutes=0.05)  # 3 s
    b.start_runner()
    _connected(hosts, 1)
    channel = hosts.channels["a1"]
    alice = hosts.alice  # type: ignore[attr-defined]
    ts = hosts.slack.post_as_user(alice, channel, "stale by the time a is back")
    wait_until(
        lambda: hosts.sql(
            "SELECT 1 FROM inbound_events WHERE target_host = 'a'"
            " AND received_at < EXTRACT(EPOCH FROM now()) - 4"
        ),
        60,
        "the message older than the limit",
    )
    a.start_runner()

    def told() -> list[str]:
        return [
            str(m.get("text", ""))
            for m in hosts.slack.thread(channel, ts)
            if "Not delivered to `a1`" in str(m.get("text", ""))
        ]

    wait_until(told, 90, "the sender told")
    assert "routed_max_wait_minutes" in told()[0]
    # the note goes out while the row's attempt is open; its outcome commits right after
    wait_until(
        lambda: hosts.sql("SELECT outcome FROM inbound_events") == [("expired",)],
        30,
        "the row closed as expired",
    )
    assert hosts.queued_keys("a1") == []
    # a fresh message goes through as ever
    fresh = hosts.slack.post_as_user(alice, channel, "fresh one")
    wait_until(lambda: f"slack:{channel}:{fresh}" in hosts.queued_keys("a1"), 90, "fresh queued")


@pytest.fixture
def restartable(
    tmp_path: Path, cli_bins: dict[str, Path], fake_models: tuple[Any, Any], slack: Any
) -> Iterator[tuple[Hosts, Cluster]]:
    """Two hosts on a Postgres of their own (the test stops and starts it; the session's
    cluster, shared with other tests, is left alone)."""
    cluster = Cluster().start()
    try:
        url = cluster.create("agentbridge")
        with _two_hosts(tmp_path, cli_bins, fake_models, slack, url) as rig:
            yield rig, cluster
    finally:
        cluster.stop()


def test_a_postgres_restart_mid_run_loses_nothing_and_deafens_no_runner(
    restartable: tuple[Hosts, Cluster],
) -> None:
    hosts, cluster = restartable
    for fleet in hosts.fleets.values():
        fleet.start_runner()
    _connected(hosts, 2)
    for fleet in hosts.fleets.values():  # a runner that cannot start without its database
        wait_until(lambda f=fleet: "runner: started" in f.log_text(), 60, "the runner up")
    alice = hosts.alice  # type: ignore[attr-defined]
    sent: dict[str, list[str]] = {"a1": [], "b1": []}

    def send(tag: str, count: int) -> dict[str, str]:
        last = {}
        for i in range(count):
            for slug, channel in hosts.channels.items():
                ts = hosts.slack.post_as_user(alice, channel, f"{tag} {i} for {slug}")
                last[slug] = f"slack:{channel}:{ts}"
                sent[slug].append(last[slug])
        return last

    send("before", 2)
    cluster.halt("fast")  # while those are still on their way
    send("during", 2)

    def outlasted() -> bool:
        """Every message sent meanwhile reached a runner and went unacknowledged (nothing can
        be kept without the database) until Slack gave up redelivering it: the outage outlasts
        Slack's retries, and the runners must still deliver each one once it is over."""
        during = [
            d
            for d in hosts.slack.deliveries("events_api")
            if str(d["payload"].get("event", {}).get("text", "")).startswith("during ")
        ]
        return len(during) == 4 and all(d["gave_up"] and not d["acked"] for d in during)

    wait_until(outlasted, 90, "Slack giving up on the messages sent during the outage")
    cluster.resume()
    after = send("after", 1)
    # Neither runner deaf for more than 10 s once the database is back (the bound): each
    # host's agent has the message sent after the restart in its queue by then, whichever
    # runner Slack handed it to.
    wait_until(
        lambda: all(key in hosts.queued_keys(slug) for slug, key in after.items()),
        10,
        "a message taken on each host within 10 s of Postgres being back",
    )
    for slug, keys in sent.items():
        wait_until(
            lambda slug=slug, keys=keys: set(hosts.queued_keys(slug)) >= set(keys),
            120,
            f"every message queued for {slug}",
        )
        assert sorted(hosts.queued_keys(slug)) == sorted(keys), f"{slug}: lost or duplicated"
    notes = {f"{tag} {i} for {slug}" for tag, n in (("before", 2), ("during", 2), ("after", 1))
             for i in range(n) for slug in sent}  # fmt: skip
    pattern = r"(?:before|during|after) \d+ for [ab]1"
    wait_until(lambda: set(hosts.model_read(pattern)) >= notes, 180, "every note read by its agent")
    read = hosts.model_read(pattern)
    assert set(read) == notes and set(read.values()) == {1}, f"read twice: {read.most_common(3)}"
    for host, fleet in hosts.fleets.items():
        log = fleet.log_text()
        assert "ended unexpectedly" not in log, f"{host}: a core task died"
        # A blocking call of ours is caught in the act by the lag monitor's sampling thread
        # ("the loop was at ..." some call); a stall it never saw, or saw in the loop's idle
        # select, is the whole process paused (a loaded box's I/O writeback), which no code
        # here can cause or avoid.
        stalls = [
            line
            for line in log.splitlines()
            if "event loop stalled" in line
            and "the loop was at" in line
            and "selectors.py" not in line
        ]
        assert not stalls, f"{host}: a blocking call stalled the event loop: {stalls[:3]}"


def test_other_answers_reach_the_asking_agent_whichever_runner_slack_handed_the_form_to(
    hosts: Hosts,
) -> None:
    """An "Other…" form is opened by the asking agent's runner (a), but Slack hands its
    submission, which carries no channel, to either runner: it is routed to `a`, whose
    waiting hook gets the answer and Claude reads it. Several rounds, so that Slack (at random,
    as the emulator does) surely handed some submissions to `b`."""
    from tests.e2e.test_questions import answered_in_thread, ask_message, buttons
    from tests.integration.test_runner import wait_ready

    a = hosts.fleets["a"]
    for fleet in hosts.fleets.values():
        fleet.start_runner()
    _connected(hosts, 2)
    wait_ready(a, "a1", "claude")
    channel = hosts.channels["a1"]
    alice = hosts.alice  # type: ignore[attr-defined]
    slack = hosts.slack
    submitted: set[str] = set()

    def routed_forms() -> list[tuple[Any, ...]]:
        return hosts.sql(
            "SELECT received_by FROM inbound_events WHERE kind = 'action'"
            " AND payload LIKE '%otherform%'"
        )

    rounds = 0
    while rounds < 3 or (not routed_forms() and rounds < 10):
        question = f"Which colour {rounds}?"
        root = slack.post_as_user(alice, channel, f"pick ASK:{question}|red|blue")
        msg = wait_until(lambda: ask_message(slack, channel), 90, "the question as buttons")
        slack.click(alice, channel, msg["ts"], buttons(msg)["Other…"], "other")
        view = wait_until(
            lambda: [v for v in slack.views(user=alice) if v["id"] not in submitted],
            30,
            "the answer form",
        )[-1]
        submitted.add(view["id"])
        slack.submit_view(alice, view["id"], {"answer": {"text": f"green {rounds}"}})
        told = f'"{question}"="green {rounds}"'
        wait_until(
            lambda r=root, t=told: answered_in_thread(slack, channel, r, t), 90, "the model told"
        )
        wait_until(lambda: a.status()["a1"]["activity"] == "idle", 60, "a1 idle")
        rounds += 1
    assert routed_forms() and {r[0] for r in routed_forms()} == {"b"}, "no form went through b"
