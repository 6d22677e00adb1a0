"""``agentbridge move`` between two runners on one machine (hosts `a` and `b`: two tmux servers,
two state dirs, one Slack app on the emulator, one real Postgres; the rig of
``test_two_hosts.py``). Agent ``a1`` starts on `a`; its work dir and CLI home are the same paths
on both "hosts", as an operator moving an agent provides them.

- Mid-traffic: messages for ``a1`` keep arriving while it moves to `b`; each is queued once and
  read once by the model behind the real CLI, and every line the CLI wrote is mirrored once.
- Partition: `a`'s database connection is cut (a relay between `a` and Postgres), the move goes
  through `b`'s takeover (`a` silent for ``move_takeover_after_seconds``), and when `a`'s
  connection is back, `a` writes nothing for ``a1`` (a trigger records which runner's
  connection wrote each of the agent's rows) and pastes nothing for it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from bridge.devtools.tcpcut import Relay
from tests.conftest import wait_until
from tests.e2e.test_two_hosts import Hosts, _connected, _two_hosts
from tests.pg import pg_cluster, pg_url

__all__ = ["pg_cluster", "pg_url"]

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.xdist_group("two_hosts")]

AUDITED = ("ledger", "prompt_queue", "transcripts", "launches", "agents", "placements")
AUDIT = """
CREATE TABLE row_audit (tbl TEXT, slug TEXT, app TEXT, op TEXT, at DOUBLE PRECISION);
CREATE FUNCTION audit_row() RETURNS trigger AS $$
BEGIN
  INSERT INTO row_audit VALUES (TG_TABLE_NAME,
    CASE WHEN TG_OP = 'DELETE' THEN OLD.slug ELSE NEW.slug END,
    current_setting('application_name'), TG_OP, EXTRACT(EPOCH FROM clock_timestamp()));
  RETURN NULL;
END $$ LANGUAGE plpgsql;
"""


def _with(url: str, port: int | None, app: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc if port is None else f"{parts.netloc.rsplit(':', 1)[0]}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, f"application_name={app}", ""))


@pytest.fixture
def rig(
    tmp_path: Path, cli_bins: dict[str, Path], fake_models: tuple[Any, Any], slack: Any, pg_url: str
) -> Iterator[tuple[Hosts, Relay]]:
    parts = urlsplit(pg_url)
    relay = Relay(parts.hostname or "127.0.0.1", parts.port or 5432)
    try:
        with _two_hosts(tmp_path, cli_bins, fake_models, slack, pg_url) as hosts:
            for name, fleet in hosts.fleets.items():
                port = relay.port if name == "a" else None
                fleet.slack_env["AGENTBRIDGE_DATABASE_URL"] = _with(pg_url, port, f"host-{name}")
                fleet.write_config(host_down_after_seconds=3, move_takeover_after_seconds=4)
            yield hosts, relay
    finally:
        relay.close()


def _start(hosts: Hosts) -> None:
    for fleet in hosts.fleets.values():
        fleet.start_runner()
    _connected(hosts, 2)
    a = hosts.fleets["a"]
    wait_until(lambda: "a1" in a.sessions(), 60, "a1 running on a")
    wait_until(
        lambda: hosts.sql("SELECT host, epoch FROM placements WHERE slug = 'a1'") == [("a", 1)],
        60,
        "a1 placed on a",
    )


def _placed(hosts: Hosts, slug: str) -> tuple[str, int] | None:
    rows = hosts.sql("SELECT host, epoch FROM placements WHERE slug = %s", slug)
    return (str(rows[0][0]), int(rows[0][1])) if rows else None


def _move(hosts: Hosts, to: str) -> str:
    b = hosts.fleets["b"]
    out = b.cli("move", "a1", "--to", to, "--config", str(b.config_path))
    return out.stdout


def _bot_texts(hosts: Hosts, channel: str) -> list[str]:
    return [
        str(m.get("text", ""))
        for m in hosts.slack.messages(channel)
        if m.get("bot_id") and "ack:" in str(m.get("text", ""))
    ]


def _transcript_acks(home: Path) -> Counter[str]:
    """The model's replies (``ack: ...``) in the CLI's transcripts, however many files."""
    found: Counter[str] = Counter()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "text" and str(node.get("text", "")).startswith("ack:"):
                found[str(node["text"])] += 1
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in home.rglob("*.jsonl"):
        for line in path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                walk(json.loads(line))
    return found


def test_a_move_mid_traffic_loses_and_duplicates_nothing(rig: tuple[Hosts, Relay]) -> None:
    hosts, _ = rig
    a, b = hosts.fleets["a"], hosts.fleets["b"]
    _start(hosts)
    alice = hosts.alice  # type: ignore[attr-defined]
    channel = hosts.channels["a1"]
    keys: list[str] = []

    def send(first: int, count: int) -> None:
        for i in range(first, first + count):
            ts = hosts.slack.post_as_user(alice, channel, f"note {i} for a1")
            keys.append(f"slack:{channel}:{ts}")

    send(0, 4)
    wait_until(lambda: hosts.model_read(r"note \d+ for a1"), 60, "a1 at work on a")
    assert "moving from a to b" in _move(hosts, "b")
    send(4, 6)  # while the handover runs
    wait_until(lambda: _placed(hosts, "a1") == ("b", 2), 90, "a1 handed over to b")
    send(10, 4)
    wait_until(lambda: set(hosts.queued_keys("a1")) >= set(keys), 120, "every message queued")
    assert sorted(hosts.queued_keys("a1")) == sorted(keys), "lost or duplicated"
    notes = {f"note {i} for a1" for i in range(14)}
    pattern = r"note \d+ for a1"
    wait_until(lambda: set(hosts.model_read(pattern)) >= notes, 180, "every note read by a1")
    read = hosts.model_read(pattern)
    assert set(read) == notes and set(read.values()) == {1}, f"read twice: {read.most_common(3)}"
    # every reply the CLI wrote is mirrored once (by a before the handover, by b after it)
    wait_until(
        lambda: not hosts.sql("SELECT 1 FROM ledger WHERE slug = 'a1' AND status = 'pending'"),
        60,
        "no post in doubt",
    )
    written = _transcript_acks(a.root / "homes" / "a1")
    wait_until(lambda: Counter(_bot_texts(hosts, channel)) == written, 60, "every reply mirrored")
    assert set(written.values()) == {1}
    assert "a1" in b.sessions() and "a1" not in a.sessions()
    assert "a1: handed over to b (epoch 2)" in a.log_text()
    assert "a1: delivered" not in a.log_text().split("a1: handed over to b")[1]


def test_a_partitioned_old_host_writes_nothing_for_the_moved_agent(
    rig: tuple[Hosts, Relay],
) -> None:
    hosts, relay = rig
    a, b = hosts.fleets["a"], hosts.fleets["b"]
    _start(hosts)
    alice = hosts.alice  # type: ignore[attr-defined]
    channel = hosts.channels["a1"]
    ts = hosts.slack.post_as_user(alice, channel, "before the cut")
    wait_until(lambda: hosts.model_read("before the cut"), 60, "a1 at work on a")
    wait_until(lambda: any("before the cut" in t for t in _bot_texts(hosts, channel)), 60, "reply")
    with psycopg.connect(hosts.url, autocommit=True) as conn:
        conn.execute(AUDIT.encode())
        for table in AUDITED:
            conn.execute(
                f"CREATE TRIGGER audit_{table} AFTER INSERT OR UPDATE OR DELETE ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION audit_row()".encode()
            )
    relay.cut()
    assert "moving from a to b" in _move(hosts, "b")
    wait_until(lambda: _placed(hosts, "a1") == ("b", 2), 90, "a1 taken over by b")
    wait_until(lambda: "a1" in b.sessions(), 60, "a1 running on b")
    assert "a1" in a.sessions()  # a, cut off, still has its copy: it stops it when back
    back_at = time.time()
    relay.restore()
    wait_until(lambda: "a1" not in a.sessions(), 60, "a's copy of a1 stopped")
    wait_until(lambda: "a1: placed on b now; dropping it here" in a.log_text(), 30, "a's log")
    fresh = hosts.slack.post_as_user(alice, channel, "after the move")
    wait_until(lambda: hosts.model_read("after the move"), 120, "read by a1 on b")
    wait_until(
        lambda: any("after the move" in t for t in _bot_texts(hosts, channel)), 60, "b mirrors"
    )
    wait_until(
        lambda: hosts.sql("SELECT 1 FROM hosts WHERE host = 'a' AND last_seen > %s", back_at),
        30,
        "a beats again",
    )
    by_a = hosts.sql(
        "SELECT tbl, op, at FROM row_audit WHERE slug = 'a1' AND app = 'host-a' AND at >= %s",
        back_at,
    )
    assert by_a == [], f"a wrote for a1 after coming back: {by_a}"
    assert hosts.sql("SELECT COUNT(*) FROM row_audit WHERE app = 'host-b'")[0][0] > 0
    assert hosts.queued_keys("a1").count(f"slack:{channel}:{fresh}") == 1
    assert hosts.model_read("after the move") == Counter({"after the move": 1})
    assert "a1: delivered" not in a.log_text().split("dropping it here")[1]
    written = _transcript_acks(a.root / "homes" / "a1")
    wait_until(lambda: Counter(_bot_texts(hosts, channel)) == written, 60, "every reply mirrored")
    assert ts
