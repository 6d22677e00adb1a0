"""Reviews in the state db: one row per (repo, pull request, head commit), so every trigger
(Slack, the command line, the poll, a runner restart) agrees on what was already reviewed.

The table is store migration 7 (:mod:`bridge.store.db`), so it exists on both engines (SQLite
and Postgres) like every other table.

Rows go ``requested`` (from ``agentbridge review``: only the reference is known yet) ->
``running`` -> ``done`` | ``failed`` -> ``cleaned``; a request that duplicates a review ends
``refused`` with the reason in ``note``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bridge.store.db import Store, execute_unless_taken

ACTIVE = ("running",)
FINISHED = ("done", "failed")


@dataclass(frozen=True, slots=True)
class Review:
    id: int
    template: str | None
    ref: str
    repo: str | None
    number: int | None
    head: str | None
    title: str | None
    url: str | None
    slug: str | None
    status: str
    via: str
    user: str | None
    channel: str | None
    header: str | None
    worktree: str | None
    note: str | None
    created_at: float
    finished_at: float | None
    clean_after: float | None


class Reviews:
    """All SQL about reviews. Synchronous (the store's lock); the service calls it off-loop."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _rows(self, where: str, params: tuple[Any, ...] = ()) -> list[Review]:
        rows = self.store.query(f"SELECT * FROM reviews WHERE {where} ORDER BY id", params)
        return [Review(**dict(r)) for r in rows]

    def get(self, review_id: int) -> Review | None:
        rows = self._rows("id = ?", (review_id,))
        return rows[0] if rows else None

    def by_slug(self, slug: str) -> Review | None:
        rows = self._rows("slug = ? AND status = 'running'", (slug,))
        return rows[-1] if rows else None

    def request(self, ref: str, template: str | None, via: str) -> int:
        """A request from the command line, for the runner to take up."""
        with self.store.tx() as db:
            cur = db.execute(
                "INSERT INTO reviews (template, ref, status, via, created_at)"
                " VALUES (?, ?, 'requested', ?, ?)",
                (template, ref, via, time.time()),
            )
            return int(cur.lastrowid or 0)

    def requested(self) -> list[Review]:
        return self._rows("status = 'requested'")

    def begin(
        self, fields: dict[str, Any], request_id: int | None = None
    ) -> tuple[int | None, Review | None]:
        """Start a review of (repo, number, head) unless one is running for that PR or that
        head was reviewed already: (new id, None) or (None, the review in the way). Atomic, so
        two triggers at once start one review."""
        repo, number, head = fields["repo"], fields["number"], fields["head"]
        with self.store.tx() as db:
            row = db.execute(
                "SELECT * FROM reviews WHERE repo = ? AND number = ? AND status != 'refused'"
                " AND status != 'requested' AND (status = 'running' OR head = ?)"
                " ORDER BY status = 'running' DESC, id DESC LIMIT 1",
                (repo, number, head),
            ).fetchone()
            if row is not None:
                return None, Review(**dict(row))
            values = {**fields, "status": "running", "created_at": time.time()}
            # The check above and the write below race with another runner's on Postgres; the
            # unique index decides, and the loser is told "taken" rather than failing.
            if request_id is not None:
                sets = ", ".join(f"{k} = ?" for k in values)
                sql, params = (
                    f"UPDATE reviews SET {sets} WHERE id = ?",
                    (*values.values(), request_id),
                )
            else:
                marks = ", ".join("?" for _ in values)
                sql, params = (
                    f"INSERT INTO reviews ({', '.join(values)}) VALUES ({marks})",
                    tuple(values.values()),
                )
            cur = execute_unless_taken(db, sql, params)
            if cur is None:
                return None, None
            if request_id is not None:
                return request_id, None
            return int(cur.lastrowid or 0), None

    def update(self, review_id: int, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.store.tx() as db:
            db.execute(f"UPDATE reviews SET {sets} WHERE id = ?", (*fields.values(), review_id))

    def finish(self, review_id: int, status: str, keep_for: float, note: str | None) -> bool:
        """End a running review (once: False when it had already ended)."""
        now = time.time()
        with self.store.tx() as db:
            cur = db.execute(
                "UPDATE reviews SET status = ?, finished_at = ?, clean_after = ?, note = ?"
                " WHERE id = ? AND status = 'running'",
                (status, now, now + keep_for, note, review_id),
            )
            return cur.rowcount == 1

    def running(self) -> list[Review]:
        return self._rows("status = 'running'")

    def reviewed(self, repo: str, number: int) -> list[Review]:
        return self._rows(
            "repo = ? AND number = ? AND status NOT IN ('requested', 'refused')", (repo, number)
        )

    def due(self, now: float | None = None) -> list[Review]:
        """Finished reviews whose ``keep_for`` is over (all finished ones with ``now=inf``)."""
        when = time.time() if now is None else now
        return self._rows(
            "status IN ('done', 'failed') AND (clean_after IS NULL OR clean_after <= ?)", (when,)
        )
