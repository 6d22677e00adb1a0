"""Fencing: a runner writes an agent's exactly-once rows only while it holds the agent's placement.

With a shared store an agent can move (``agentbridge move``, :mod:`bridge.store.moves`). Each
placement carries an epoch, bumped by every move; a runner remembers the epoch it took each of
its agents at (:meth:`Fence.hold`). Every write that exactly-once rests on (the ledger's
intents, commits and offsets, the queue's claim and outcomes, the agent's row and its launches)
calls :meth:`Fence.check` inside its own transaction:
``SELECT ... FROM placements WHERE slug = ? AND host = ? AND epoch = ? FOR SHARE``.
On Postgres that row lock serializes with the move's ``UPDATE`` of the same row: a move waits
for a fenced transaction in flight, and a fenced transaction after the move finds no row and
raises :class:`Fenced`, so it commits nothing. A partitioned old host that comes back therefore
can neither post (its intent is refused before the chat call) nor paste (its claim is refused
before the paste) for an agent that moved while it was away.

The fence is the store's (``store.fence``), armed only by a runner on a shared store; on
SQLite (one box, no moves) there is none and no check. An agent the runner has not taken yet
(placed here by a config reload since its last look) is taken at the epoch its row has, when the
row names this host; otherwise the check fails for it too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bridge.store.db import Conn, Store

log = logging.getLogger("agentbridge.fence")


class Fenced(RuntimeError):
    """This runner no longer holds the agent's placement: the write was refused (and rolled
    back). The runner drops the agent from its fleet; it never retries the write."""

    def __init__(self, slug: str, host: str, epoch: int | None) -> None:
        held = f"epoch {epoch}" if epoch is not None else "no epoch"
        super().__init__(f"{slug}: placement no longer held by {host} ({held}); write refused")
        self.slug = slug


class Fence:
    def __init__(self, host: str, on_lost: Callable[[str], None] | None = None) -> None:
        self.host = host
        self.on_lost = on_lost
        """Told (from the writing thread) when a check fails: the runner re-reads placements."""
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def hold(self, held: dict[str, int]) -> None:
        """The agents this runner holds now, and the epoch it took each at."""
        with self._lock:
            self._held = dict(held)

    def release(self, slug: str) -> None:
        with self._lock:
            self._held.pop(slug, None)

    def epoch(self, slug: str) -> int | None:
        with self._lock:
            return self._held.get(slug)

    def check(self, db: Conn, slug: str) -> None:
        """Raise :class:`Fenced` unless (this host, the held epoch) is still ``slug``'s
        placement; the row stays share-locked until ``db``'s transaction ends."""
        epoch = self.epoch(slug)
        if epoch is not None:
            rows = db.execute(
                "SELECT 1 FROM placements WHERE slug = ? AND host = ? AND epoch = ? FOR SHARE",
                (slug, self.host, epoch),
            ).fetchall()
            if rows:
                return
        else:  # placed here since the last look (a config reload): the row says whose it is
            rows = db.execute(
                "SELECT epoch FROM placements WHERE slug = ? AND host = ? FOR SHARE",
                (slug, self.host),
            ).fetchall()
            if rows:
                with self._lock:
                    self._held[slug] = int(rows[0][0])
                return
        self.release(slug)
        log.warning("%s: placement lost (moved away); refusing the write", slug)
        if self.on_lost is not None:
            self.on_lost(slug)
        raise Fenced(slug, self.host, epoch)

    def check_row(self, db: Conn, table: str, row_id: int) -> None:
        """:meth:`check` for the agent of row ``row_id`` of ``table`` (``prompt_queue``,
        ``launches``: tables with an ``id`` and a ``slug``)."""
        rows = db.execute(f"SELECT slug FROM {table} WHERE id = ?", (row_id,)).fetchall()
        if rows:
            self.check(db, str(rows[0][0]))


def guard(store: Store, db: Conn, slug: str) -> None:
    """The check, when ``store`` has an armed fence (a runner on a shared store)."""
    fence = store.fence
    if fence is not None:
        fence.check(db, slug)


def guard_item(store: Store, db: Conn, item_id: int) -> None:
    fence = store.fence
    if fence is not None:
        fence.check_row(db, "prompt_queue", item_id)
