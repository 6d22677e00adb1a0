"""Retention on both engines (issue 25, item 1): old rows of every kind go, in batches, and
what exactly-once and the open work still need stays: pending intents, queued prompts, an
ephemeral agent's task rows, open questions, running launches, unhandled routed events. Under a
steady load the SQLite file stops growing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bridge.store.db import Store
from bridge.store.retention import BATCH, DAY, RULES, cutoffs, keep_bounded, prune_batch
from tests.integration.test_store_engines import store
from tests.pg import pg_cluster, pg_url

__all__ = ["pg_cluster", "pg_url", "store"]  # the store fixture: one per engine

HORIZONS = {
    "ledger_days": 90.0,
    "queue_days": 30.0,
    "routed_days": 7.0,
    "audit_days": 365.0,
    "launches_days": 90.0,
}


def seed(store: Store, at: float, tag: str, n: int = 1, keepers: bool = True) -> None:
    """``n`` rows of every kind written at ``at``: the prunable ones and (``keepers``) the ones
    that must stay."""
    with store.tx() as db:
        for i in range(n):
            key = f"{tag}-{i}"
            for status in ("posted", "skipped", "pending")[: 3 if keepers else 2]:
                db.execute(
                    "INSERT INTO ledger (slug, event_id, status, created_at, posted_at)"
                    " VALUES ('a', ?, ?, ?, ?)",
                    (f"{key}-{status}", status, at, None if status == "pending" else at),
                )
            db.execute(
                "INSERT INTO turn_routes (slug, event_id, path, generation, line_offset,"
                " created_at) VALUES ('a', ?, 'p', 0, 0, ?)",
                (key, at),
            )
            rows = (("steer", "confirmed"), ("steer", "queued"), ("task", "confirmed"))
            for kind, status in rows[: 3 if keepers else 1]:
                db.execute(
                    "INSERT INTO prompt_queue (slug, kind, text, status, created_at)"
                    " VALUES ('a', ?, ?, ?, ?)",
                    (kind, key, status, at),
                )
            for done in (at, None)[: 2 if keepers else 1]:
                db.execute(
                    "INSERT INTO inbound_events (event_id, kind, channel, payload, received_by,"
                    " received_at, done_at) VALUES (?, 'message', 'C', '{}', 'h', ?, ?)",
                    (f"{key}-{done is None}", at, done),
                )
            db.execute(
                "INSERT INTO answer_audit (ask_id, slug, user, action, at)"
                " VALUES (1, 'a', 'U', 'x', ?)",
                (at,),
            )
            for status in ("delivered", "open")[: 2 if keepers else 1]:
                db.execute(
                    "INSERT INTO asks (slug, key, kind, status, request, created_at)"
                    " VALUES ('a', ?, 'question', ?, '{}', ?)",
                    (key, status, at),
                )
            for exited in (at, None)[: 2 if keepers else 1]:
                db.execute(
                    "INSERT INTO launches (slug, started_at, exited_at) VALUES ('a', ?, ?)",
                    (at, exited),
                )


def counts(store: Store) -> dict[str, int]:
    tables = ("ledger", "turn_routes", "prompt_queue", "inbound_events", "answer_audit", "asks")
    out = {t: int(store.query(f"SELECT COUNT(*) FROM {t}")[0][0]) for t in tables}
    out["launches"] = int(store.query("SELECT COUNT(*) FROM launches")[0][0])
    return out


def prune_all(store: Store, now: float) -> None:
    for kind, cutoff in cutoffs(HORIZONS, now).items():
        while prune_batch(store, kind, cutoff) == BATCH:
            pass


def test_old_rows_go_and_what_is_still_needed_stays(store: Store) -> None:
    now = time.time()
    seed(store, now - 400 * DAY, "old")
    seed(store, now - 1 * DAY, "new")
    before = counts(store)
    prune_all(store, now)
    after = counts(store)
    kept = {
        "ledger": 3 + 1,  # the new rows, and the old pending intent
        "turn_routes": 1,
        "prompt_queue": 3 + 2,  # the new rows; the old queued prompt and the old task row
        "inbound_events": 2 + 1,  # the new rows; the old unhandled one
        "answer_audit": 1,
        "asks": 2 + 1,  # the new rows; the old open question
        "launches": 2 + 1,  # the new rows; the old running launch
    }
    assert after == kept, (before, after)
    pending = store.query("SELECT event_id FROM ledger WHERE status = 'pending'")
    assert sorted(r[0] for r in pending) == ["new-0-pending", "old-0-pending"]


def test_a_horizon_of_null_keeps_that_kind_for_ever(store: Store) -> None:
    now = time.time()
    seed(store, now - 400 * DAY, "old")
    kinds = cutoffs({**HORIZONS, "ledger_days": None}, now)
    assert "ledger" not in kinds and "turn_routes" not in kinds and set(kinds) < set(RULES)
    for kind, cutoff in kinds.items():
        prune_batch(store, kind, cutoff)
    assert counts(store)["ledger"] == 3


def test_the_pass_works_in_batches_until_done(store: Store) -> None:
    now = time.time()
    seed(store, now - 400 * DAY, "old", n=BATCH + 7)  # more than one batch of each kind

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(keep_bounded(store, lambda: HORIZONS, stop, first=0, pause=0))
        while counts(store)["launches"] != BATCH + 7:  # the ended launches were the last kind
            await asyncio.sleep(0.05)
        stop.set()
        await task

    asyncio.run(scenario())
    assert counts(store)["ledger"] == BATCH + 7  # only the pending intents stay


def test_under_steady_load_the_sqlite_file_stops_growing(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    horizons = {**HORIZONS, "audit_days": 30.0}  # every kind reaches its steady state
    day0 = time.time() - 400 * DAY
    sizes, rows = [], []
    for day in range(150):  # five months of 100 rows of each kind a day, pruned daily
        now = day0 + day * DAY
        seed(store, now, f"d{day}", n=100, keepers=False)
        for kind, cutoff in cutoffs(horizons, now).items():
            while prune_batch(store, kind, cutoff) == BATCH:
                pass
        sizes.append((tmp_path / "state.db").stat().st_size)
        rows.append(sum(counts(store).values()))
    store.close()
    assert rows[-1] == rows[-30], "past the longest horizon (90 days) the row count is flat"
    assert sizes[-1] <= sizes[-30] * 1.02, sizes[::10]  # freed pages are reused
