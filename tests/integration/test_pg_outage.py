"""The shared store on a real Postgres that restarts, and the joined transaction's limits (issue
20, items 7, 8 and 11).

- After a restart every pooled connection is dead: the pool checks each before handing it out,
  so the first statement after the restart works (none fails on a stale connection).
- The routed-event drain waits out the restart (retrying with backoff) and drains what was
  written meanwhile; it used to die on the first error, leaving its runner deaf for good.
- Nothing outlives the transaction it joined: a task spawned while a routed event's
  transaction is open (a click's "Interrupt and continue") commits on its own, even when that
  transaction rolls back.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.chat.console import ConsoleBackend
from bridge.cluster.router import RoutedBackend
from bridge.config.model import parse_config
from bridge.devtools.pgcluster import Cluster
from bridge.store.pg import PgStore
from bridge.store.queue import Kind, PromptQueue
from tests.pg import pg_cluster, pg_url

__all__ = ["pg_cluster", "pg_url"]

pytestmark = [pytest.mark.postgres]


@pytest.fixture(scope="module")
def restartable() -> Iterator[Cluster]:
    """A cluster of this module's own: the tests stop and start it."""
    cluster = Cluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _db(cluster: Cluster, name: str) -> str:
    return cluster.create(f"{name}_{time.time_ns()}")


def test_the_pool_hands_out_live_connections_after_a_postgres_restart(
    restartable: Cluster,
) -> None:
    store = PgStore(_db(restartable, "pool"))
    try:
        assert store.query("SELECT 1")[0][0] == 1
        restartable.halt("fast")
        restartable.resume()
        assert store.query("SELECT 1")[0][0] == 1  # the stale connection was not handed out
    finally:
        store.close()


def test_the_routed_drain_waits_out_a_postgres_restart_and_drains_on(
    restartable: Cluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = _db(restartable, "drain")
    store = PgStore(url)
    (tmp_path / "w").mkdir()
    config = parse_config(
        f"agents:\n  - {{slug: a1, workdir: {tmp_path / 'w'}, host: a, channel: '#a1'}}\n",
        tmp_path / "agents.yaml",
    )
    router = RoutedBackend(ConsoleBackend(io.StringIO()), store, "a", config, poll_s=0.2)

    def offer(ts: str) -> None:
        payload = {"channel": "#a1", "user": "U0123456789", "text": f"routed {ts}", "ref": ts}
        router._rows.offer("message", f"ev-{ts}", "#a1", ts, payload, "a")

    async def scenario() -> list[str]:
        got: list[str] = []
        stream = router.receive()
        await asyncio.to_thread(offer, "1.1")
        first = await asyncio.wait_for(anext(stream), 30)
        got.append(first.text)
        assert first.receipt is not None
        first.receipt.keep()  # taken: the row is done once the drain settles it
        nxt = asyncio.ensure_future(anext(stream))  # the first is done; waiting for more
        while not await asyncio.to_thread(
            store.query, "SELECT 1 FROM inbound_events WHERE done_at IS NOT NULL"
        ):
            await asyncio.sleep(0.05)
        await asyncio.to_thread(restartable.halt, "fast")
        while not any("claiming a routed event failed" in r.message for r in caplog.records):
            assert not nxt.done(), f"the drain ended: {nxt.exception()!r}"
            await asyncio.sleep(0.05)
        await asyncio.to_thread(restartable.resume)
        await asyncio.to_thread(offer, "1.2")  # written by another host while we waited
        second = await asyncio.wait_for(nxt, 60)
        got.append(second.text)
        assert second.receipt is not None
        second.receipt.keep()
        await stream.aclose()
        return got

    try:
        with caplog.at_level(logging.WARNING, logger="agentbridge.store"):
            assert asyncio.run(scenario()) == ["routed 1.1", "routed 1.2"]
    finally:
        asyncio.run(router.close())
        store.close()


def test_a_task_spawned_inside_a_joined_transaction_commits_on_its_own(pg_url: str) -> None:
    """The drain's transaction rolls back; what a task it spawned queued stays (on the loop or
    in a worker thread), and what the drain's own task queued goes with the transaction."""
    store = PgStore(pg_url)
    queue = PromptQueue(store)

    async def scenario() -> None:
        with store.claimed() as conn, store.join(conn):
            await asyncio.to_thread(queue.enqueue, "a1", Kind.STEER, "mine", dedupe_key="m1")
            queue.enqueue("a1", Kind.STEER, "mine too", dedupe_key="m2")

            async def interrupt_and_continue() -> None:
                await asyncio.sleep(0)  # runs while the transaction is still open
                queue.enqueue("a1", Kind.CONTINUE, "continue", dedupe_key="c1")
                await asyncio.to_thread(
                    queue.enqueue, "a1", Kind.CONTINUE, "continue too", dedupe_key="c2"
                )

            spawned = asyncio.create_task(interrupt_and_continue())
            await spawned
            conn.failed = True  # the drain's handling failed: everything it joined rolls back

    try:
        asyncio.run(scenario())
        kept = sorted(i.text for i in queue.queued())
        assert kept == ["continue", "continue too"]
        rows = store.query("SELECT dedupe_key, source FROM prompt_queue ORDER BY dedupe_key")
        assert [r[0] for r in rows] == ["c1", "c2"]
        assert all(json.loads(r[1] or "{}") == {} or r[1] for r in rows)
    finally:
        store.close()
