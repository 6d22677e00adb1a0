"""The ``inbound_events`` rows of routed events: committed by the receiving runner, claimed and
settled by the owning one (the store side of :mod:`bridge.cluster.router`).

A row's life: :meth:`EventRows.offer` commits it (a redelivery is a no-op) with a ``NOTIFY``
for its host; :meth:`EventRows.claim` locks the oldest open one in a transaction the drain holds
open while the normal inbound code runs inside it; :meth:`EventRows.finish` then either marks
it done in that same transaction (so the prompt it queued and its ``done`` commit together) or
rolls everything back. A rolled-back row stays claimable, after a backoff that grows with its
``attempts`` (a database blip must not burn every attempt in a millisecond), until
:data:`MAX_ATTEMPTS` failures close it as failed and the caller tells its sender: never
silently dropped, and a poison row does not block the others for ever.

Synchronous (worker threads only: ``asyncio.to_thread``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import psycopg
from psycopg import sql

from bridge.chat.protocol import ChatBackend
from bridge.store.pg import PgConn, PgStore

log = logging.getLogger("agentbridge.cluster")

MAX_ATTEMPTS = 5
"""Failed attempts at one routed row before it is closed as failed and its sender told."""
BACKOFF_S = 1.0
BACKOFF_MAX_S = 30.0
"""A failed row is claimable again after ``BACKOFF_S * 2**attempts`` seconds (at most this)."""


def notify_channel(host: str) -> str:
    return f"inbound_{host}"[:63]


def listen(url: str, host: str, stopping: threading.Event, wake: Callable[[], None]) -> None:
    """LISTEN for ``host``'s rows until ``stopping``, calling ``wake`` on each notification and
    on every (re)connection (rows may have come while away). A thread: ``notifies()`` blocks."""
    channel = notify_channel(host)
    while not stopping.is_set():
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                wake()
                while not stopping.is_set():
                    for _ in conn.notifies(timeout=1.0, stop_after=1):
                        wake()
        except psycopg.Error as err:
            log.warning("route: LISTEN %s lost (%s); reconnecting", channel, err)
            stopping.wait(1.0)


def payload_of(value: Any) -> dict[str, Any]:
    """A dataclass's plain fields (attachments and receipts stay behind: not serialisable)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(value):
        item = getattr(value, f.name)
        if isinstance(item, str | int | float | bool | type(None)):
            out[f.name] = item
        elif f.name in ("values",):
            out[f.name] = list(item)
        elif f.name == "form":
            out[f.name] = dict(item)
        elif f.name == "files":  # what the owner's backend needs to fetch them itself
            out[f.name] = [
                {"file_id": a.file_id, "name": a.name, "size": a.size, "source": a.source}
                for a in item
            ]
    return out


def rebuild(cls: type[Any], data: dict[str, Any], backend: ChatBackend) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names}
    if "values" in kwargs:
        kwargs["values"] = tuple(kwargs["values"])
    if "files" in kwargs:
        kwargs["files"] = tuple(backend.attachment(**f) for f in kwargs["files"])
    return cls(**kwargs)


@dataclasses.dataclass(frozen=True, slots=True)
class Claim:
    """One claimed row, its transaction still open (``stack`` ends it)."""

    stack: ExitStack
    conn: PgConn
    event_id: str
    kind: str
    channel: str
    payload: dict[str, Any]
    attempts: int
    received_at: float


class EventRows:
    def __init__(self, store: PgStore, host: str, *, backoff_s: float = BACKOFF_S) -> None:
        self._store = store
        self._host = host
        self._backoff_s = backoff_s
        self._backoff: dict[str, float] = {}
        """Rows whose last attempt failed -> when (monotonic) they may be claimed again."""

    def offer(
        self,
        kind: str,
        event_id: str,
        channel: str,
        ts: str | None,
        payload: dict[str, Any],
        target: str,
    ) -> bool:
        """Commit the event for ``target``; False when it was already there (a redelivery)."""
        with self._store.tx() as db:
            cur = db.execute(
                """INSERT OR IGNORE INTO inbound_events (event_id, kind, channel, ts,
                       target_host, payload, received_by, received_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                (event_id, kind, channel, ts, target, json.dumps(payload), self._host, time.time()),
            )
            fresh = cur.rowcount == 1
            if fresh:
                assert isinstance(db, PgConn)
                db.conn.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(notify_channel(target))))
        return fresh

    def claim(self) -> Claim | None:
        """The oldest open row for this host that is not backing off after a failed attempt,
        locked in a transaction the caller holds open (or None)."""
        now = time.monotonic()
        for event_id in [e for e, due in self._backoff.items() if due <= now]:
            del self._backoff[event_id]
        waiting = list(self._backoff)
        skip = f" AND event_id NOT IN ({', '.join('?' for _ in waiting)})" if waiting else ""
        stack = ExitStack()
        try:
            conn = stack.enter_context(self._store.claimed())
            rows = conn.execute(
                f"""SELECT event_id, kind, channel, payload, attempts, received_at
                    FROM inbound_events WHERE target_host = ? AND done_at IS NULL{skip}
                    ORDER BY received_at LIMIT 1 FOR UPDATE SKIP LOCKED""",
                (self._host, *waiting),
            ).fetchall()
        except BaseException:
            stack.close()
            raise
        if not rows:
            stack.close()
            return None
        row = rows[0]
        return Claim(
            stack, conn, str(row[0]), str(row[1]), str(row[2]), json.loads(row[3]),
            int(row[4]), float(row[5]),
        )  # fmt: skip

    def finish(self, claim: Claim, outcome: str, error: str | None) -> str:
        """Settle an attempt: ``done`` (the row marked done, committing whatever the handler
        queued with it), ``retry`` (rolled back; claimable again after a backoff) or
        ``gave up`` (rolled back for the :data:`MAX_ATTEMPTS`-th time: closed as failed, with
        ``outcome`` as its outcome; the caller tells the sender)."""
        conn, event_id = claim.conn, claim.event_id
        if error is not None:
            conn.failed = True
        if not conn.failed:
            with contextlib.suppress(psycopg.Error):
                conn.execute(
                    "UPDATE inbound_events SET done_at = ?, outcome = ? WHERE event_id = ?",
                    (time.time(), outcome, event_id),
                )
        failed = conn.failed
        try:
            claim.stack.close()  # COMMIT, or ROLLBACK when a statement (or the handling) failed
        except psycopg.Error as err:
            log.warning("route: %s not settled (%s); drained again", event_id, err)
            failed = True
        if not failed:
            self._backoff.pop(event_id, None)
            return "done"
        try:
            with self._store.tx() as db:
                db.execute(
                    """UPDATE inbound_events SET attempts = attempts + 1,
                           done_at = CASE WHEN attempts + 1 >= ? THEN ? ELSE done_at END,
                           outcome = CASE WHEN attempts + 1 >= ? THEN ? ELSE 'failed' END
                       WHERE event_id = ? AND done_at IS NULL""",
                    (MAX_ATTEMPTS, time.time(), MAX_ATTEMPTS, outcome, event_id),
                )
                rows = db.execute(
                    "SELECT attempts, done_at FROM inbound_events WHERE event_id = ?", (event_id,)
                ).fetchall()
        except Exception as err:  # the store is away: not counted, tried again after a pause
            log.warning("route: attempt on %s not counted (%s)", event_id, err)
            self._backoff[event_id] = time.monotonic() + self._backoff_s
            return "retry"
        attempts = int(rows[0][0]) if rows else MAX_ATTEMPTS
        if rows and rows[0][1] is not None and attempts >= MAX_ATTEMPTS:
            self._backoff.pop(event_id, None)
            return "gave up"
        delay = min(BACKOFF_MAX_S, self._backoff_s * 2**attempts)
        self._backoff[event_id] = time.monotonic() + delay
        return "retry"

    def abort(self, claim: Claim) -> None:
        """Roll the claim back (the runner is stopping): the row is drained again later."""
        claim.conn.failed = True
        claim.stack.close()
