"""Heartbeats and placements: which runners are alive, and which host runs which agent.

Each runner writes its row in ``hosts`` every few seconds (:meth:`HostBook.beat`). "Host X is
down" is claimed by a single conditional update (:meth:`HostBook.claim_down`), so exactly one
surviving runner reports it, with no leader. A host that beats again clears the mark, and its
own runner reports that it is back (``beat`` says whether it had been reported down).
Times are each runner's wall clock: the hosts' clocks must agree to well under the timeout
(NTP), which is the usual assumption of a heartbeat.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass

from bridge.store.db import Store


@dataclass(frozen=True, slots=True)
class HostRow:
    host: str
    last_seen: float
    started_at: float
    version: str | None
    down_noticed_at: float | None

    def age(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.last_seen


class HostBook:
    def __init__(self, store: Store) -> None:
        self.store = store

    def beat(self, host: str, version: str, *, starting: bool = False) -> bool:
        """Record that ``host`` is alive; True when it had been reported down (it is back)."""
        now = time.time()
        with self.store.tx() as db:
            rows = db.execute(
                "SELECT down_noticed_at FROM hosts WHERE host = ?", (host,)
            ).fetchall()
            was_down = bool(rows) and rows[0][0] is not None
            db.execute(
                """INSERT INTO hosts (host, last_seen, started_at, version) VALUES (?, ?, ?, ?)
                   ON CONFLICT(host) DO UPDATE SET last_seen = excluded.last_seen,
                       version = excluded.version, down_noticed_at = NULL""",
                (host, now, now, version),
            )
            if starting:
                db.execute("UPDATE hosts SET started_at = ? WHERE host = ?", (now, host))
        return was_down

    def claim_down(self, me: str, timeout: float) -> list[HostRow]:
        """Hosts silent for ``timeout`` seconds that nobody has reported yet; the caller won
        the right to report each one (the update matched its row, and only one runner's can)."""
        cutoff = time.time() - timeout
        won: list[HostRow] = []
        for row in self.hosts():
            if row.host == me or row.down_noticed_at is not None or row.last_seen >= cutoff:
                continue
            with self.store.tx() as db:
                cur = db.execute(
                    """UPDATE hosts SET down_noticed_at = ? WHERE host = ?
                       AND down_noticed_at IS NULL AND last_seen < ?""",
                    (time.time(), row.host, cutoff),
                )
                if cur.rowcount == 1:
                    won.append(row)
        return won

    def hosts(self) -> list[HostRow]:
        return [
            HostRow(r[0], r[1], r[2], r[3], r[4])
            for r in self.store.query(
                "SELECT host, last_seen, started_at, version, down_noticed_at FROM hosts"
                " ORDER BY host"
            )
        ]

    def place(self, host: str, slugs: Collection[str]) -> None:
        """Record that the config places ``slugs`` on ``host``. A config re-pin bumps the epoch
        (fencing the previous host); a row a move wrote (``moved``) is left alone: after a move
        the row, not ``host:``, is the placement (:mod:`bridge.store.moves`)."""
        now = time.time()
        with self.store.tx() as db:
            db.executemany(
                """INSERT INTO placements (slug, host, updated_at) VALUES (?, ?, ?)
                   ON CONFLICT(slug) DO UPDATE SET host = excluded.host,
                       epoch = placements.epoch + 1, updated_at = excluded.updated_at
                   WHERE placements.moved = 0 AND placements.host <> excluded.host""",
                [(slug, host, now) for slug in sorted(slugs)],
            )

    def placements(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self.store.query("SELECT slug, host FROM placements")}
