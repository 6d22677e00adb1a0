"""The transcript part of ``agentbridge doctor``: record types the parsers did not know.

The mirror counts them per agent (:mod:`bridge.store.unknown_records`). Any at all is a
warning, not a failure: the agent still works and everything known is still mirrored, but a
CLI release may have changed its transcript format (compare with FORMATS.md / the fixtures).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bridge.config import paths
from bridge.config.model import Config
from bridge.doctor.check import Check
from bridge.store.db import Store
from bridge.store.unknown_records import counts, summary


def check_unknown_records(config: Config, state_dir: Path) -> list[Check]:
    db = paths.db_path(state_dir)
    if not db.exists():
        return []
    try:
        store = Store(db, readonly=True)
        try:
            found = {a.slug: counts(store, a.slug) for a in config.agents}
        finally:
            store.close()
    except sqlite3.Error as err:
        return [Check("transcripts", False, f"cannot read {db}: {err}")]
    checks = [
        Check(
            "transcripts",
            True,
            summary(n) + " (a CLI format change? see FORMATS.md)",
            slug,
            warning=True,
        )
        for slug, n in found.items()
        if n
    ]
    return checks or [Check("transcripts", True, "no record types the parsers do not know")]
