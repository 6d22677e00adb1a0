"""Moves of an agent between hosts: the request, the handover, the takeover (shared store only).

A placement row is ``(slug, host, epoch)``. Until an agent first moves, the row follows the
config's ``host:`` (:meth:`bridge.store.hosts.HostBook.place`); a move writes ``moved = 1`` and
from then on the row is the placement, whatever ``host:`` says. The steps:

1. :meth:`MoveBook.request` (``agentbridge move SLUG --to HOST``, any host): ``moving_to``.
2. The old host stops the agent's CLI and mirror (a final pump first) and commits
   :meth:`MoveBook.hand_over`: ``host = moving_to``, ``epoch + 1``.
3. The new host sees the row name it and takes the agent. Should the old host be silent
   (no heartbeat) for ``move_takeover_after_seconds``, the new host commits
   :meth:`MoveBook.take_over` itself, bumping the epoch: the old host, if it comes back, is
   fenced (:mod:`bridge.store.fence`) and writes nothing more for the agent.

Every step is one conditional ``UPDATE`` on the row, so two runners can never both win.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bridge.store.db import Store


class MoveError(ValueError):
    """A move that cannot be asked for (unknown agent, same host, not a shared store)."""


@dataclass(frozen=True, slots=True)
class Placement:
    slug: str
    host: str
    epoch: int
    moving_to: str | None
    requested_at: float | None
    moved: bool


class MoveBook:
    def __init__(self, store: Store) -> None:
        self.store = store

    def placements(self) -> dict[str, Placement]:
        rows = self.store.query(
            "SELECT slug, host, epoch, moving_to, move_requested_at, moved FROM placements"
        )
        return {r[0]: Placement(r[0], r[1], int(r[2]), r[3], r[4], bool(r[5])) for r in rows}

    def request(self, slug: str, to: str) -> Placement:
        """Ask for ``slug`` to move to host ``to``; the placement as it was."""
        if not self.store.shared:
            raise MoveError("moves need a shared store (store: postgresql://...); this is SQLite")
        with self.store.tx() as db:
            rows = db.execute(
                "SELECT slug, host, epoch, moving_to, move_requested_at, moved FROM placements"
                " WHERE slug = ? FOR UPDATE",
                (slug,),
            ).fetchall()
            if not rows:
                raise MoveError(f"{slug!r} has no placement (no runner has placed it yet)")
            r = rows[0]
            now = Placement(r[0], r[1], int(r[2]), r[3], r[4], bool(r[5]))
            if now.host == to:
                raise MoveError(f"{slug!r} already runs on {to!r}")
            db.execute(
                "UPDATE placements SET moving_to = ?, move_requested_at = ? WHERE slug = ?",
                (to, time.time(), slug),
            )
        return now

    def in_flight(self, slug: str, within: float = 120.0) -> int:
        """Prompts being pasted, or pasted in the last ``within`` seconds and not echoed back
        by the CLI yet: stopping it now could lose one it holds in its own input queue. (An
        older unconfirmed row is history, not a reason to hold a move up.)"""
        rows = self.store.query(
            "SELECT COUNT(*) FROM prompt_queue WHERE slug = ? AND (status = 'delivering'"
            " OR (status = 'delivered' AND delivered_at >= ?))",
            (slug, time.time() - within),
        )
        return int(rows[0][0])

    def hand_over(self, slug: str, me: str, epoch: int) -> bool:
        """The old host's commit (its CLI and mirror stopped): the agent is ``moving_to``'s."""
        with self.store.tx() as db:
            cur = db.execute(
                """UPDATE placements SET host = moving_to, epoch = epoch + 1, moving_to = NULL,
                       moved = 1, updated_at = ?
                   WHERE slug = ? AND host = ? AND epoch = ? AND moving_to IS NOT NULL""",
                (time.time(), slug, me, epoch),
            )
            return cur.rowcount == 1

    def take_over(self, slug: str, me: str, epoch: int) -> bool:
        """The new host's commit when the old one is down: fences the old host out."""
        with self.store.tx() as db:
            cur = db.execute(
                """UPDATE placements SET host = ?, epoch = epoch + 1, moving_to = NULL,
                       moved = 1, updated_at = ?
                   WHERE slug = ? AND epoch = ? AND moving_to = ?""",
                (me, time.time(), slug, epoch, me),
            )
            return cur.rowcount == 1
