"""An agent's usage-limit wait, persisted, so a runner restart neither forgets a limit (and
pastes the held queue into it) nor loses the reset time ``status`` shows.

One JSON value under ``agent_meta`` key ``limit`` per agent; absent when not limited.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass

from bridge.store.db import Store

KEY = "limit"


@dataclass(slots=True)
class LimitWait:
    since: float
    """When the limit was first seen (this episode)."""
    resets_at: float
    """When the runner sends the continue prompt (plus its grace)."""
    source: str
    """Where ``resets_at`` came from: ``reported`` (the CLI's epoch), ``clock`` (a time of day on
    screen or in a message), ``fallback`` (none given: the configured wait)."""
    waits: int = 0
    """Further waits after a continue that hit the limit again."""
    continued_at: float | None = None
    """When the continue prompt was queued; None while waiting."""
    updated: bool = False
    """The channel was told of a better reset time than its first note said (once a wait)."""


def load(store: Store, slug: str) -> LimitWait | None:
    try:
        rows = store.query("SELECT value FROM agent_meta WHERE slug = ? AND key = ?", (slug, KEY))
    except sqlite3.Error:
        return None  # a store older than agent_meta: nothing recorded
    if not rows:
        return None
    try:
        return LimitWait(**json.loads(rows[0][0]))
    except (TypeError, ValueError):
        return None


def load_all(store: Store) -> dict[str, LimitWait]:
    rows = store.query("SELECT slug FROM agent_meta WHERE key = ?", (KEY,))
    found = {row[0]: load(store, row[0]) for row in rows}
    return {slug: wait for slug, wait in found.items() if wait is not None}


def save(store: Store, slug: str, wait: LimitWait | None) -> None:
    with store.tx() as db:
        if wait is None:
            db.execute("DELETE FROM agent_meta WHERE slug = ? AND key = ?", (slug, KEY))
            return
        db.execute(
            """INSERT INTO agent_meta (slug, key, value, updated_at) VALUES (?, ?, ?, ?)
               ON CONFLICT(slug, key) DO UPDATE SET value = excluded.value,
                   updated_at = excluded.updated_at""",
            (slug, KEY, json.dumps(asdict(wait)), time.time()),
        )
