"""Retention: old rows go, in small batches, so the database stays bounded under steady load.

What each horizon (``retention:`` in agents.yaml, days; null keeps for ever) removes, and why
that is safe for exactly-once:

- ``ledger_days``: posted and skipped ledger rows, and the turn routes of the same age. A ledger
  row stops a re-read transcript line from being posted twice; lines are re-read only when their
  file is reset under the runner (rewritten or truncated), which happens within minutes of the
  write, never months later (a rotated or resumed file resumes from its saved offset). Pending
  intents are never pruned: they are settled first. The cost: a reply in a thread older than the
  horizon no longer finds its agent by the thread's posts and goes by the channel instead.
- ``queue_days``: prompt-queue rows that ended (confirmed, delivered, dropped, failed). Slack
  redelivers a message within minutes, so its dedupe key is not needed for days. An ephemeral
  agent's ``task`` rows are kept: they say its task was delivered.
- ``routed_days``: routed events (several hosts) that were handled.
- ``audit_days``: closed questions and approvals, and the audit of who answered what.
- ``launches_days``: launches that ended.

Each batch is one short transaction of at most :data:`BATCH` rows, run in a worker thread, with a
pause between batches, so neither the loop nor other writers wait on a long delete. SQLite reuses
the freed pages (the file stops growing; it does not shrink without a ``VACUUM``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bridge.aio import wait_event
from bridge.store.db import Store
from bridge.store.retry import is_store_error

log = logging.getLogger("agentbridge.store")

BATCH = 500
"""Rows per delete transaction."""

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Rule:
    """One kind of record: the horizon key it follows, and the delete of one batch older than
    a cutoff (``?`` cutoff, ``?`` limit)."""

    horizon: str
    sql: str


RULES: Mapping[str, Rule] = {
    "ledger": Rule(
        "ledger_days",
        """DELETE FROM ledger WHERE (slug, event_id) IN (
               SELECT slug, event_id FROM ledger WHERE posted_at IS NOT NULL AND posted_at < ?
               AND status IN ('posted', 'skipped') LIMIT ?)""",
    ),
    "turn_routes": Rule(
        "ledger_days",
        """DELETE FROM turn_routes WHERE (slug, event_id) IN (
               SELECT slug, event_id FROM turn_routes WHERE created_at < ? LIMIT ?)""",
    ),
    "prompt_queue": Rule(
        "queue_days",
        """DELETE FROM prompt_queue WHERE id IN (
               SELECT id FROM prompt_queue WHERE created_at < ? AND kind <> 'task'
               AND status IN ('confirmed', 'delivered', 'dropped', 'failed') LIMIT ?)""",
    ),
    "inbound_events": Rule(
        "routed_days",
        """DELETE FROM inbound_events WHERE event_id IN (
               SELECT event_id FROM inbound_events WHERE done_at IS NOT NULL AND done_at < ?
               LIMIT ?)""",
    ),
    "answer_audit": Rule(
        "audit_days",
        """DELETE FROM answer_audit WHERE id IN (
               SELECT id FROM answer_audit WHERE at < ? LIMIT ?)""",
    ),
    "asks": Rule(
        "audit_days",
        """DELETE FROM asks WHERE id IN (
               SELECT id FROM asks WHERE created_at < ?
               AND status NOT IN ('open', 'answered') LIMIT ?)""",
    ),
    "launches": Rule(
        "launches_days",
        """DELETE FROM launches WHERE id IN (
               SELECT id FROM launches WHERE started_at < ? AND exited_at IS NOT NULL LIMIT ?)""",
    ),
}


def prune_batch(store: Store, kind: str, cutoff: float, limit: int = BATCH) -> int:
    """Delete at most ``limit`` rows of ``kind`` older than ``cutoff`` (one transaction);
    returns how many went (worker thread)."""
    with store.tx() as db:
        return int(db.execute(RULES[kind].sql, (cutoff, limit)).rowcount)


def cutoffs(horizons: Mapping[str, float | None], now: float | None = None) -> dict[str, float]:
    """Per kind, the time before which its rows go; kinds kept for ever are absent."""
    now = time.time() if now is None else now
    out: dict[str, float] = {}
    for kind, rule in RULES.items():
        days = horizons.get(rule.horizon)
        if days is not None:
            out[kind] = now - days * DAY
    return out


EVERY_S = 3600.0
"""Seconds between two retention passes."""
FIRST_S = 60.0
"""The first pass waits this long after start: a start has enough to do."""
PAUSE_S = 0.05
"""Between two batches: other writers get the database."""


async def keep_bounded(
    store: Store,
    horizons: Callable[[], Mapping[str, float | None]],
    stop: asyncio.Event,
    *,
    first: float = FIRST_S,
    every: float = EVERY_S,
    pause: float = PAUSE_S,
) -> None:
    """Until ``stop``: a retention pass every ``every`` seconds, or the horizons'
    ``every_minutes`` (read anew each time, as the horizons, so an edited agents.yaml applies
    at the next pass). A store error ends the pass early; the next one goes on where it
    stopped."""
    await wait_event(stop, first)
    while not stop.is_set():
        now = horizons()
        minutes = now.get("every_minutes")
        if minutes:
            every = minutes * 60
        for kind, cutoff in cutoffs(now).items():
            total = 0
            while not stop.is_set():
                try:
                    gone = await asyncio.to_thread(prune_batch, store, kind, cutoff)
                except Exception as err:
                    if not is_store_error(err):
                        raise
                    log.warning("store: retention of %s paused (%s)", kind, err)
                    break
                total += gone
                if gone < BATCH:
                    break
                await wait_event(stop, pause)
            if total:
                log.info("store: retention removed %d %s rows", total, kind)
        await wait_event(stop, every)
