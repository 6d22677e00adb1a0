"""Fencing on a real Postgres: two "hosts" (one pool each, as two runners have) and one agent.

Host ``a`` holds ``x`` at epoch 1 (its :class:`Fence`); the move to ``b`` commits (the
handover of ``a``, or the takeover of ``b`` while ``a`` is away). From then on every write of
``a`` for ``x`` that exactly-once rests on (ledger intents, commits, skips, settles, offsets;
the queue's claim and outcomes) is refused with :class:`Fenced` and leaves no row, while ``b``,
at epoch 2, writes as usual. A move waits for a fenced transaction in flight (the row lock
``FOR SHARE`` takes), and a fenced transaction that starts while a move is uncommitted waits for
it and is then refused.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.store.fence import Fence, Fenced, guard
from bridge.store.hosts import HostBook
from bridge.store.ledger import Ledger
from bridge.store.moves import MoveBook, MoveError
from bridge.store.pg import PgStore
from bridge.store.position import Position
from bridge.store.queue import Kind, PromptQueue
from tests.conftest import wait_until
from tests.pg import pg_cluster, pg_url

__all__ = ["pg_cluster", "pg_url"]

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
AT = Position(9, 1, 0)


@pytest.fixture
def hosts(pg_url: str) -> Iterator[tuple[PgStore, PgStore]]:
    a, b = PgStore(pg_url), PgStore(pg_url)
    HostBook(a).place("a", ["x"])
    for store, name in ((a, "a"), (b, "b")):
        store.fence = Fence(name)
        store.fence.hold(
            {s: r.epoch for s, r in MoveBook(store).placements().items() if r.host == name}
        )
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def _rows(store: PgStore) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in store.query(
            "SELECT 'ledger', event_id, status, chat_ref FROM ledger UNION ALL"
            " SELECT 'queue', CAST(id AS TEXT), status, outcome FROM prompt_queue UNION ALL"
            " SELECT 'transcript', path, CAST(\"offset\" AS TEXT), session_id FROM transcripts"
            " UNION ALL SELECT 'agent', slug, state, runtime_session_id FROM agents UNION ALL"
            " SELECT 'launch', CAST(id AS TEXT), CAST(pid AS TEXT), exit_reason FROM launches"
            " ORDER BY 1, 2"
        )
    ]


def test_after_a_move_commits_the_old_hosts_ledger_and_queue_writes_are_refused(
    hosts: tuple[PgStore, PgStore],
) -> None:
    a, b = hosts
    ledger, queue = Ledger(a), PromptQueue(a)
    ledger.follow("x", "/t.jsonl", "s1")
    ledger.record_intents("x", ("e1",), "#x")
    first = queue.enqueue("x", Kind.STEER, "one")
    second = queue.enqueue("x", Kind.STEER, "two")
    assert first is not None and second is not None
    assert queue.begin(first)
    a.upsert_agent("x", "claude", "id", "h")
    launch = a.record_launch("x", 1, "s1", False, "claude")

    MoveBook(b).request("x", "b")
    assert MoveBook(a).hand_over("x", "a", 1)
    before = _rows(a)

    refused = [
        lambda: ledger.record_intents("x", ("e2",), "#x"),
        lambda: ledger.commit_posts("x", ("e1",), "ts1", path="/t.jsonl", position=AT),
        lambda: ledger.commit_and_intend("x", [(("e1",), "ts1")], "/t.jsonl", None, [], "#x"),
        lambda: ledger.skip_posts("x", ("e1",), "gone"),
        lambda: ledger.settle("x", {"e1": "ts1"}, []),
        lambda: ledger.advance("x", "/t.jsonl", AT),
        lambda: ledger.follow("x", "/t2.jsonl", "s2"),
        lambda: queue.begin(second),
        lambda: queue.delivered(first),
        lambda: queue.settle(first, "failed", "x"),
        lambda: queue.failed(first, "x"),
        lambda: a.upsert_agent("x", "claude", "id", "h"),
        lambda: a.set_state("x", "running"),
        lambda: a.set_activity("x", "idle", None, None),
        lambda: a.set_runtime_session("x", "s9"),
        lambda: a.count_restart("x"),
        lambda: a.record_launch("x", 1, "s9", False, "claude"),
        lambda: a.update_launch(launch, pid=2),
        lambda: a.end_launch("x", "stopped"),
        lambda: a.forget_agent("x"),
    ]
    for write in refused:
        with pytest.raises(Fenced):
            write()
        a.fence.hold({})  # as after a refusal: nothing held, and still refused
    assert _rows(a) == before  # nothing of it committed

    b.fence.hold({"x": 2})
    assert PromptQueue(b).begin(second)
    Ledger(b).commit_posts("x", ("e1",), "ts1", path="/t.jsonl", position=AT)
    assert dict(b.query("SELECT event_id, status FROM ledger")) == {"e1": "posted"}


def test_a_move_waits_for_a_fenced_transaction_in_flight(hosts: tuple[PgStore, PgStore]) -> None:
    a, b = hosts
    MoveBook(b).request("x", "b")
    moved: list[bool] = []
    mover = threading.Thread(target=lambda: moved.append(MoveBook(b).take_over("x", "b", 1)))
    with a.tx() as db:
        guard(a, db, "x")  # the placement row is share-locked until this commits
        db.execute(
            "INSERT INTO ledger (slug, event_id, status, created_at)"
            " VALUES ('x', 'e1', 'pending', 0)"
        )
        mover.start()
        wait_until(lambda: _waiting_on_a_lock(b), 30, "the move to wait for the fenced write")
        assert not moved
    mover.join(30)
    assert moved == [True]
    assert b.query("SELECT host, epoch FROM placements")[0][:] == ("b", 2)
    assert [r[0] for r in a.query("SELECT event_id FROM ledger")] == ["e1"]
    with pytest.raises(Fenced):
        Ledger(a).record_intents("x", ("e2",), "#x")


def test_a_fenced_write_begun_during_an_uncommitted_move_waits_and_is_refused(
    hosts: tuple[PgStore, PgStore],
) -> None:
    a, b = hosts
    MoveBook(b).request("x", "b")
    outcome: list[BaseException | None] = []

    def write() -> None:
        try:
            Ledger(a).record_intents("x", ("late",), "#x")
            outcome.append(None)
        except Fenced as err:
            outcome.append(err)

    writer = threading.Thread(target=write)
    with b.tx() as db:
        db.execute(
            "UPDATE placements SET host = 'b', epoch = epoch + 1, moved = 1 WHERE slug = 'x'"
        )
        writer.start()
        wait_until(lambda: _waiting_on_a_lock(a), 30, "the fenced write to wait for the move")
    writer.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], Fenced)
    assert a.query("SELECT COUNT(*) FROM ledger")[0][0] == 0


def test_a_move_is_refused_clearly_on_sqlite_for_an_unknown_agent_and_to_its_own_host(
    hosts: tuple[PgStore, PgStore], tmp_path: Path
) -> None:
    from bridge.store.db import Store

    local = Store(tmp_path / "state.db")
    try:
        with pytest.raises(MoveError, match="shared store"):
            MoveBook(local).request("x", "b")
    finally:
        local.close()
    a, _ = hosts
    with pytest.raises(MoveError, match="no placement"):
        MoveBook(a).request("nobody", "b")
    with pytest.raises(MoveError, match="already runs on 'a'"):
        MoveBook(a).request("x", "a")


def _waiting_on_a_lock(store: PgStore) -> bool:
    rows = store.query(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND datname = current_database()"
    )
    return int(rows[0][0]) > 0
