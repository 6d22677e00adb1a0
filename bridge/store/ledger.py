"""Exactly-once delivery bookkeeping: event id -> posted message, and file offsets.

The protocol, per mirrored event:

1. ``is_posted`` -- already delivered (possibly before a crash): skip it.
2. ``record_intents`` -- committed *before* the chat call, so a crash during the call leaves a
   trace.
3. the chat call, tagged with the event ids it carries (one message may carry several when a
   rate-limited backend coalesces a burst).
4. ``commit_posts`` -- the posted ref, and the new file offset, in one transaction.

:meth:`Ledger.commit_and_intend` does 4 for messages already posted and 2 for the next ones in
one transaction (a catch-up's many messages then cost fewer commits); the order per message
stays intent, call, commit.

:meth:`Ledger.pending` lists intents whose outcome is unknown (a crash during the call, or a
call whose retries ran out without an answer); the mirror asks the backend which of them really
arrived (``find_posted``) and settles them before posting anything for them again, at start-up
and before every flush. An intent records the first event id of its message (``first``): a
message is found by any of its ids, and a file upload only by its first one.

A post the chat service refused for good is recorded ``skipped`` with the reason: it counts as
done (never retried), and :meth:`Ledger.skipped_count` shows it in ``status``.

Offsets only move past a line once all of its events are recorded as posted (or skipped), so the
line is re-read (and its done events skipped) after any crash.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from bridge.store.db import Conn, Store
from bridge.store.fence import guard
from bridge.store.position import Position


@dataclass(frozen=True, slots=True)
class Intent:
    """A post whose outcome is unknown: where to look for it, and its message's first id."""

    event_id: str
    channel: str
    thread: str | None
    first: str


@dataclass(frozen=True, slots=True)
class TranscriptState:
    path: str
    session_id: str | None
    position: Position
    bad_lines: int


class Ledger:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- events ---------------------------------------------------------------------------

    def is_posted(self, slug: str, event_id: str) -> bool:
        """Done with: posted, or skipped for good (a skipped event is never retried)."""
        rows = self.store.query(
            "SELECT 1 FROM ledger WHERE slug = ? AND event_id = ?"
            " AND status IN ('posted', 'skipped')",
            (slug, event_id),
        )
        return bool(rows)

    def record_intents(
        self, slug: str, event_ids: tuple[str, ...], channel: str, thread: str | None = None
    ) -> None:
        """``channel``/``thread`` say where to look for the post when settling after a crash."""
        with self.store.tx() as db:
            guard(self.store, db, slug)
            _intend(db, slug, event_ids, channel, thread)

    def done_among(self, slug: str, event_ids: list[str]) -> set[str]:
        """Which of ``event_ids`` are done with (posted or skipped): one query per 500 ids, for
        a catch-up that would otherwise ask :meth:`is_posted` once per event."""
        done: set[str] = set()
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.store.query(
                f"SELECT event_id FROM ledger WHERE slug = ? AND event_id IN ({marks})"
                " AND status IN ('posted', 'skipped')",
                (slug, *chunk),
            )
            done.update(str(r[0]) for r in rows)
        return done

    def commit_and_intend(
        self,
        slug: str,
        posted: list[tuple[tuple[str, ...], str]],
        path: str,
        allowed: tuple[Position, int] | None,
        intents: list[tuple[tuple[str, ...], str | None]],
        channel: str,
    ) -> None:
        """:meth:`commit_posts` of messages posted (``(ids, ref)`` each, with the offset and
        bad-line count they allow) and :meth:`record_intents` of the next ones (``(ids, thread)``
        each, in ``channel``), in one transaction: a catch-up posting many messages back to back
        pays one commit for several, not two for each. The intents are still committed before
        their chat calls, so a crash loses no trace."""
        if not posted and not intents:
            return
        now = time.time()
        with self.store.tx() as db:
            guard(self.store, db, slug)
            for event_ids, ref in posted:
                _mark_posted(db, slug, event_ids, ref, now)
            if posted and allowed is not None:
                _save_position(db, slug, path, allowed[0], allowed[1])
            for event_ids, thread in intents:
                _intend(db, slug, event_ids, channel, thread)

    def commit_posts(
        self,
        slug: str,
        event_ids: tuple[str, ...],
        ref: str,
        *,
        path: str | None = None,
        position: Position | None = None,
        bad: int = 0,
    ) -> None:
        """Record the post of these events and, in the same transaction, the offset it allows."""
        now = time.time()
        with self.store.tx() as db:
            guard(self.store, db, slug)
            _mark_posted(db, slug, event_ids, ref, now)
            if path is not None and position is not None:
                _save_position(db, slug, path, position, bad)

    def pending(self, slug: str) -> list[Intent]:
        """Intents whose chat call may or may not have happened, oldest first."""
        rows = self.store.query(
            "SELECT event_id, payload FROM ledger WHERE slug = ? AND status = 'pending'"
            " ORDER BY created_at",
            (slug,),
        )
        out: list[Intent] = []
        for event_id, payload in rows:
            try:
                where = json.loads(payload or "{}")
            except ValueError:
                where = {"channel": payload}
            if not isinstance(where, dict):
                where = {}
            first = str(where.get("first") or event_id)
            channel = str(where.get("channel") or "")
            out.append(Intent(event_id, channel, where.get("thread"), first))
        return out

    def skip_posts(
        self,
        slug: str,
        event_ids: tuple[str, ...],
        reason: str,
        *,
        path: str | None = None,
        position: Position | None = None,
        bad: int = 0,
    ) -> None:
        """Record events the chat service refused for good, and the offset that allows."""
        now = time.time()
        with self.store.tx() as db:
            guard(self.store, db, slug)
            db.executemany(
                """INSERT INTO ledger (slug, event_id, status, payload, created_at, posted_at)
                   VALUES (?, ?, 'skipped', ?, ?, ?)
                   ON CONFLICT(slug, event_id) DO UPDATE SET status = 'skipped',
                       payload = excluded.payload, posted_at = excluded.posted_at""",
                [(slug, e, json.dumps({"reason": reason}), now, now) for e in event_ids],
            )
            if path is not None and position is not None:
                _save_position(db, slug, path, position, bad)

    def skipped_count(self, slug: str) -> int:
        rows = self.store.query(
            "SELECT COUNT(*) FROM ledger WHERE slug = ? AND status = 'skipped'", (slug,)
        )
        return int(rows[0][0])

    def settle(self, slug: str, arrived: dict[str, str], lost: list[str]) -> None:
        """After a look-up: mark the intents found posted (``event_id -> ref``) and drop the
        ones not found (they are posted again), all in one transaction. One per intent would
        make a crash's 64 intents 64 commits, any of which a flaky database can fail."""
        now = time.time()
        with self.store.tx() as db:
            guard(self.store, db, slug)
            for event_id, ref in arrived.items():
                _mark_posted(db, slug, (event_id,), ref, now)
            db.executemany(
                "DELETE FROM ledger WHERE slug = ? AND event_id = ? AND status = 'pending'",
                [(slug, e) for e in lost],
            )

    def posted_count(self, slug: str) -> int:
        rows = self.store.query(
            "SELECT COUNT(*) FROM ledger WHERE slug = ? AND status = 'posted'", (slug,)
        )
        return int(rows[0][0])

    # -- transcripts ----------------------------------------------------------------------

    def transcript(self, slug: str, path: str) -> TranscriptState | None:
        rows = self.store.query(
            "SELECT * FROM transcripts WHERE slug = ? AND path = ?", (slug, path)
        )
        if not rows:
            return None
        r = rows[0]
        return TranscriptState(
            r["path"],
            r["session_id"],
            Position(r["offset"], r["inode"], r["generation"]),
            r["bad_lines"],
        )

    def current_transcript(self, slug: str) -> TranscriptState | None:
        """The file the agent's mirror was last following (unfinished, most recent)."""
        rows = self.store.query(
            "SELECT path FROM transcripts WHERE slug = ? AND finished = 0"
            " ORDER BY updated_at DESC LIMIT 1",
            (slug,),
        )
        return self.transcript(slug, rows[0][0]) if rows else None

    def follow(self, slug: str, path: str, session_id: str | None) -> TranscriptState:
        """Start (or keep) following ``path``; any other file of the agent is finished."""
        with self.store.tx() as db:
            guard(self.store, db, slug)
            db.execute(
                """INSERT INTO transcripts (slug, path, session_id, updated_at)
                   VALUES (?, ?, ?, ?)
                   ON CONFLICT(slug, path) DO UPDATE SET finished = 0,
                       session_id = COALESCE(excluded.session_id, session_id),
                       updated_at = excluded.updated_at""",
                (slug, path, session_id, time.time()),
            )
            db.execute(
                "UPDATE transcripts SET finished = 1 WHERE slug = ? AND path != ?", (slug, path)
            )
        state = self.transcript(slug, path)
        assert state is not None
        return state

    def advance(self, slug: str, path: str, position: Position, bad: int = 0) -> None:
        with self.store.tx() as db:
            guard(self.store, db, slug)
            _save_position(db, slug, path, position, bad)

    def bad_lines(self, slug: str) -> int:
        rows = self.store.query(
            "SELECT COALESCE(SUM(bad_lines), 0) FROM transcripts WHERE slug = ?", (slug,)
        )
        return int(rows[0][0])


def _mark_posted(db: Conn, slug: str, event_ids: tuple[str, ...], ref: str, now: float) -> None:
    """The events of one posted message are done, with the chat ref they went out as."""
    db.executemany(
        """UPDATE ledger SET status = 'posted', chat_ref = ?, posted_at = ?
           WHERE slug = ? AND event_id = ?""",
        [(ref, now, slug, event_id) for event_id in event_ids],
    )


def _intend(
    db: Conn,
    slug: str,
    event_ids: tuple[str, ...],
    channel: str,
    thread: str | None,
) -> None:
    first = event_ids[0] if event_ids else ""
    where = json.dumps({"channel": channel, "thread": thread, "first": first})
    db.executemany(
        """INSERT INTO ledger (slug, event_id, status, payload, created_at)
           VALUES (?, ?, 'pending', ?, ?)
           ON CONFLICT(slug, event_id) DO UPDATE SET payload = excluded.payload
           WHERE status = 'pending'""",
        [(slug, event_id, where, time.time()) for event_id in event_ids],
    )


def _save_position(db: Conn, slug: str, path: str, pos: Position, bad: int = 0) -> None:
    db.execute(
        """UPDATE transcripts SET offset = ?, inode = ?, generation = ?,
               bad_lines = bad_lines + ?, updated_at = ?
           WHERE slug = ? AND path = ?""",
        (pos.offset, pos.inode, pos.generation, bad, time.time(), slug, path),
    )
