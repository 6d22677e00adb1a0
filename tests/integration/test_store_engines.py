"""One contract, two engines: the store classes behave the same on SQLite and on Postgres.

The Postgres half runs against a real server (tests/pg.py): the migrations, the rewritten
queries, identity ids, upserts, the joined transaction the inbound drain uses, and a second
runner starting against a migrated database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.store.db import Store, execute_unless_taken
from bridge.store.hosts import HostBook
from bridge.store.ledger import Intent, Ledger
from bridge.store.position import Position
from bridge.store.queue import Kind, PromptQueue
from bridge.store.schema import MIGRATIONS
from tests.pg import pg_cluster, pg_url

__all__ = ["pg_cluster", "pg_url"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = Store(tmp_path / "state.db")
    else:
        from bridge.store.pg import PgStore

        s = PgStore(request.getfixturevalue("pg_url"))
    try:
        yield s
    finally:
        s.close()


def test_migrated_to_the_latest_schema(store: Store) -> None:
    assert store.schema_version() == len(MIGRATIONS)


def test_agents_and_launches(store: Store) -> None:
    store.upsert_agent("a1", "claude", "id-1", "hash")
    store.upsert_agent("a1", "claude", "id-1", "hash2")
    store.set_state("a1", "running")
    store.count_restart("a1")
    store.set_activity("a1", "working", 12000, None)
    row = store.agent("a1")
    assert row is not None and row.spec_hash == "hash2" and row.restarts == 1
    assert row.context_tokens == 12000 and row.state == "running"
    first = store.record_launch("a1", 10, None, False, "claude")
    second = store.record_launch("a1", 11, "s", True, "adopted")
    assert second > first > 0
    store.update_launch(second, pid=12)
    launch = store.current_launch("a1")
    assert launch is not None and launch.pid == 12 and launch.resumed is True
    store.end_launch("a1", "crashed")
    assert store.launch_failures_since("a1", 0) == 2


def test_queue_dedupe_claim_and_scope(store: Store) -> None:
    queue = PromptQueue(store)
    item = queue.enqueue("a1", Kind.STEER, "100% sure? yes", dedupe_key="slack:C1:1.0")
    assert item is not None
    assert queue.enqueue("a1", Kind.STEER, "again", dedupe_key="slack:C1:1.0") is None
    other = queue.enqueue("b1", Kind.STEER, "for b")
    assert other is not None and other != item
    queue.scope = frozenset({"a1"})
    assert [i.id for i in queue.queued()] == [item]
    assert queue.begin(item) and not queue.begin(item)
    queue.scope = frozenset()
    assert queue.recover() == []
    queue.scope = None
    assert [i.id for i in queue.recover()] == [item]
    assert queue.counts("a1") == {"failed": 1}
    got = queue.get(item)
    assert got is not None and got.text == "100% sure? yes"


def test_ledger_exactly_once_bookkeeping(store: Store) -> None:
    ledger = Ledger(store)
    ledger.follow("a1", "/t/1.jsonl", "s1")
    ledger.record_intents("a1", ("e1", "e2"), "C1", "9.9")
    ledger.record_intents("a1", ("e1",), "C2")
    assert ledger.pending("a1") == [Intent("e1", "C2", None, "e1"), Intent("e2", "C1", "9.9", "e1")]
    ledger.commit_posts(
        "a1", ("e1", "e2"), "1.1", path="/t/1.jsonl", position=Position(99, 2**40, 3), bad=2
    )
    assert ledger.is_posted("a1", "e1") and ledger.posted_count("a1") == 2
    state = ledger.current_transcript("a1")
    assert state is not None and state.position == Position(99, 2**40, 3)
    ledger.follow("a1", "/t/2.jsonl", None)
    current = ledger.current_transcript("a1")
    assert current is not None and current.path == "/t/2.jsonl"
    assert ledger.bad_lines("a1") == 2


def test_heartbeats_and_one_down_claim(store: Store) -> None:
    book = HostBook(store)
    assert book.beat("a", "1", starting=True) is False
    book.beat("b", "1")
    with store.tx() as db:
        db.execute("UPDATE hosts SET last_seen = last_seen - 1000 WHERE host = ?", ("a",))
    won = book.claim_down("b", 60)
    assert [h.host for h in won] == ["a"]
    assert book.claim_down("c", 60) == []  # reported once, whoever asks next
    assert book.beat("a", "1") is True  # back: its runner says so
    book.place("a", ["a1", "a2"])
    assert book.placements() == {"a1": "a", "a2": "a"}


@pytest.mark.postgres
def test_joined_transaction_commits_or_rolls_back_together(pg_url: str) -> None:
    from bridge.store.pg import PgStore

    store = PgStore(pg_url)
    second = PgStore(pg_url)  # a second runner on a migrated database: nothing to apply
    try:
        queue = PromptQueue(store)
        with store.claimed() as conn, store.join(conn):
            queue.enqueue("a1", Kind.STEER, "kept", dedupe_key="k1")
            assert PromptQueue(second).queued() == []  # not visible before the commit
        assert [i.text for i in queue.queued()] == ["kept"]
        with store.claimed() as conn, store.join(conn):
            queue.enqueue("a1", Kind.STEER, "lost", dedupe_key="k2")
            with pytest.raises(Exception, match="syntax"):
                store.query("SELECT FROM WHERE")
        assert [i.text for i in queue.queued()] == ["kept"]  # the failed one rolled back
        assert second.schema_version() == len(MIGRATIONS)
    finally:
        second.close()
        store.close()


@pytest.mark.postgres
def test_doctor_checks_database_schema_and_each_hosts_heartbeat(
    pg_url: str, tmp_path: Path
) -> None:
    from bridge.config.model import parse_config
    from bridge.doctor.cluster import check_cluster
    from bridge.store.pg import PgStore

    store = PgStore(pg_url)
    try:
        book = HostBook(store)
        book.beat("a", "1")
        book.beat("b", "1")
        with store.tx() as db:
            db.execute("UPDATE hosts SET last_seen = last_seen - 1000 WHERE host = ?", ("b",))
    finally:
        store.close()
    config = parse_config(
        f"""
store: {pg_url}
agents:
  - {{slug: a1, workdir: {tmp_path}, host: a}}
  - {{slug: b1, workdir: {tmp_path}, host: b}}
  - {{slug: c1, workdir: {tmp_path}, host: c}}
  - {{slug: loose, workdir: {tmp_path}}}
""",
        tmp_path / "agents.yaml",
        {"AGENTBRIDGE_HOST": "a"},
    )
    checks = {
        (c.name, c.agent): c for c in check_cluster(config, tmp_path, {"AGENTBRIDGE_HOST": "a"})
    }
    assert checks[("database", None)].ok
    assert checks[("schema", None)].ok and "current" in checks[("schema", None)].detail
    assert checks[("host a", None)].ok and "this host" in checks[("host a", None)].detail
    assert not checks[("host b", None)].ok and "down" in checks[("host b", None)].detail
    assert not checks[("host c", None)].ok and "never started" in checks[("host c", None)].detail
    assert not checks[("placement", "loose")].ok
    assert check_cluster(config.model_copy(update={"store": None}), tmp_path, {}) == []


def test_a_write_a_unique_index_refuses_leaves_the_transaction_going(store: Store) -> None:
    """Two runners starting the same review at once: the second's insert breaks the unique
    index. It is told "taken" (None) and the rest of its transaction still commits (Postgres
    would abort the whole transaction without the savepoint)."""
    row = (
        "INSERT INTO reviews (ref, repo, number, head, status, via, created_at)"
        " VALUES (?, 'o/r', 7, 'abc', 'running', 'test', 1)"
    )
    with store.tx() as db:
        assert execute_unless_taken(db, row, ("first",)) is not None
    with store.tx() as db:
        assert execute_unless_taken(db, row, ("second",)) is None
        db.execute(row.replace("'abc'", "'def'"), ("after",))
    with pytest.raises(Exception, match="nowhere"), store.tx() as db:
        execute_unless_taken(db, "INSERT INTO nowhere VALUES (1)", ())  # others raise
    refs = [r[0] for r in store.query("SELECT ref FROM reviews ORDER BY id")]
    assert refs == ["first", "after"]
