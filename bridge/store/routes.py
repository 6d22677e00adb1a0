"""Durable turn routing: where each turn's prompt went, and which prompts are still unclaimed.

A transcript line is read again after any crash or failed post (the offset only passes lines
whose events are all posted), and the runner that re-reads it may be a new process. So the route
a prompt got (its Slack thread, its header, whether its echo was suppressed) is written here the
first time its line is read, keyed by the prompt's event id and its place in the file; a re-read
prompt gets the same route, and a re-read that starts mid-turn takes the thread of the last
prompt before its starting offset.

Which queue item a prompt came from is also durable: a confirmed ``prompt_queue`` row that no
``turn_routes`` row has claimed yet. Only the newest :data:`UNCLAIMED_WINDOW` confirmed rows are
considered, so an old row whose prompt line was never routed cannot capture a new prompt.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from bridge.store.db import Store

UNCLAIMED_WINDOW = 20


@dataclass(frozen=True, slots=True)
class SavedRoute:
    thread: str | None
    skip: bool
    header: str | None


@dataclass(frozen=True, slots=True)
class Place:
    """Where a line is: its file, the file's generation, the line's start offset."""

    path: str
    generation: int
    offset: int


@dataclass(frozen=True, slots=True)
class Origin:
    """A confirmed queue row, as the router needs it."""

    id: int
    kind: str
    text: str
    source: dict[str, Any]


class TurnBook:
    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, slug: str, event_id: str) -> SavedRoute | None:
        rows = self.store.query(
            "SELECT thread, skip, header FROM turn_routes WHERE slug = ? AND event_id = ?",
            (slug, event_id),
        )
        return SavedRoute(rows[0][0], bool(rows[0][1]), rows[0][2]) if rows else None

    def save(
        self, slug: str, event_id: str, at: Place, route: SavedRoute, item_id: int | None
    ) -> None:
        with self.store.tx() as db:
            db.execute(
                """INSERT OR IGNORE INTO turn_routes (slug, event_id, path, generation,
                       line_offset, thread, skip, header, item_id, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    slug,
                    event_id,
                    at.path,
                    at.generation,
                    at.offset,
                    route.thread,
                    int(route.skip),
                    route.header,
                    item_id,
                    time.time(),
                ),
            )

    def thread_at(self, slug: str, at: Place) -> str | None:
        """The thread in effect at ``at``: the last prompt routed before it in the same file,
        else the last one routed in another file of the agent (a rotation mid-turn)."""
        rows = self.store.query(
            """SELECT thread FROM turn_routes WHERE slug = ? AND path = ? AND generation = ?
               AND line_offset < ? ORDER BY line_offset DESC LIMIT 1""",
            (slug, at.path, at.generation, at.offset),
        )
        if not rows:
            rows = self.store.query(
                """SELECT thread FROM turn_routes WHERE slug = ? AND path != ?
                   ORDER BY created_at DESC LIMIT 1""",
                (slug, at.path),
            )
        return rows[0][0] if rows else None

    def unclaimed(self, slug: str) -> list[Origin]:
        """Recently confirmed prompts no routed turn has claimed, oldest first."""
        rows = self.store.query(
            """SELECT id, kind, text, source FROM (
                   SELECT id, kind, text, source FROM prompt_queue
                   WHERE slug = ? AND status = 'confirmed' ORDER BY id DESC LIMIT ?
               ) AS recent
               WHERE id NOT IN (SELECT item_id FROM turn_routes
                                WHERE slug = ? AND item_id IS NOT NULL)
               ORDER BY id""",
            (slug, UNCLAIMED_WINDOW, slug),
        )
        out = []
        for r in rows:
            try:
                source = json.loads(r[3]) if r[3] else {}
            except ValueError:
                source = {}
            out.append(Origin(int(r[0]), str(r[1]), str(r[2]), source))
        return out
