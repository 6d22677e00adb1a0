"""Per-agent counts of transcript record types the agent's parser did not know.

A CLI release that renames the records the mirror relies on would not crash anything: the
parser skips what it does not know, and the channel just goes quiet. These counts (the
``unknown`` of :class:`runtimes.events.LineResult`, by type) are the early sign, shown by
``status --json`` and ``doctor``. They live in ``agent_meta`` under one key, so no schema
change is needed. A line read again after a runner crash (the offset is committed after the
post) may be counted twice: the counts are a signal, not a ledger.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter

from bridge.store.db import Store

KEY = "unknown_records"


class UnknownTally:
    """One mirror's running tally: ``note`` per parsed line (in memory, on the mirror's loop),
    ``flush`` after each batch (one small write, only when something was noted)."""

    def __init__(self, store: Store, slug: str) -> None:
        self.store = store
        self.slug = slug
        self.pending: Counter[str] = Counter()

    def note(self, unknown: str | None) -> None:
        if unknown is not None:
            self.pending[unknown] += 1

    def flush(self) -> None:
        if self.pending:
            add(self.store, self.slug, self.pending)
            self.pending = Counter()


def add(store: Store, slug: str, counts: Counter[str]) -> None:
    """Merge ``counts`` into the agent's stored counts."""
    with store.tx() as db:
        rows = db.execute(
            "SELECT value FROM agent_meta WHERE slug = ? AND key = ?", (slug, KEY)
        ).fetchall()
        merged = Counter(_decode(rows[0][0] if rows else None)) + counts
        db.execute(
            """INSERT INTO agent_meta (slug, key, value, updated_at) VALUES (?, ?, ?, ?)
               ON CONFLICT(slug, key) DO UPDATE SET value = excluded.value,
                   updated_at = excluded.updated_at""",
            (slug, KEY, json.dumps(dict(sorted(merged.items()))), time.time()),
        )


def counts(store: Store, slug: str) -> dict[str, int]:
    """The agent's counts by record type ({} when none, or the store predates agent_meta)."""
    try:
        rows = store.query("SELECT value FROM agent_meta WHERE slug = ? AND key = ?", (slug, KEY))
    except sqlite3.Error:
        return {}
    return _decode(rows[0][0] if rows else None)


def summary(found: dict[str, int]) -> str:
    """``3 unknown records: foo ×2, event_msg/bar ×1`` (most frequent first), or ''."""
    if not found:
        return ""
    total = sum(found.values())
    top = sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))
    listed = ", ".join(f"{name} ×{n}" for name, n in top[:6]) + (", …" if len(top) > 6 else "")
    return f"{total} unknown record{'s' if total != 1 else ''}: {listed}"


def _decode(value: str | None) -> dict[str, int]:
    try:
        data = json.loads(value) if value else {}
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): int(v) for k, v in data.items() if isinstance(v, int)}
