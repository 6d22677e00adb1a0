"""Issue 11 item 15: a ``/compact`` dropped after ``/clear`` leaves the guard armed again,
in this runner and in the next one (the armed state is durable)."""

from __future__ import annotations

from pathlib import Path

from bridge.config.model import CompactionConfig
from bridge.lifecycle.compaction import CompactionGuard, policy
from bridge.store.db import Store
from bridge.store.queue import Kind, PromptQueue


def _guard(store: Store) -> tuple[CompactionGuard, PromptQueue]:
    q = PromptQueue(store)
    pol = policy(CompactionConfig(), self_compacts=False, window=1_000_000)
    return CompactionGuard(store, q, lambda _s, _w: pol, lambda _s, _t: None), q


def _drop_stale(guard: CompactionGuard, q: PromptQueue) -> None:
    """What the deliverer does at the next turn boundary."""
    for item in q.queued("a"):
        if not guard.still_needed(item):
            q.dropped(item.id, "no longer needed")


def test_clear_dropping_a_queued_compact_rearms_the_guard(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    store.upsert_agent("a", "claude", "id", "h")
    guard, q = _guard(store)
    guard.context("a", 760_000)
    assert [i.kind for i in q.queued("a")] == [Kind.COMPACT]
    guard.context("a", 12_000)  # the person ran /clear: no compaction event, context is tiny
    _drop_stale(guard, q)
    assert q.queued("a") == []
    # The session grows again: the soft and the hard limit act again.
    guard.context("a", 510_000)
    assert [i.kind for i in q.queued("a")] == [Kind.NUDGE]
    guard.context("a", 760_000)
    assert [i.kind for i in q.queued("a")] == [Kind.NUDGE, Kind.COMPACT]


def test_a_guard_left_stuck_by_an_old_runner_rearms_after_restart(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    store.upsert_agent("a", "claude", "id", "h")
    guard, q = _guard(store)
    guard.context("a", 760_000)
    (compact,) = q.queued("a")
    q.dropped(compact.id, "no longer needed (context below the threshold)")  # after /clear
    store.close()
    # A new runner: the durable state still says /compact is on its way.
    store = Store(tmp_path / "state.db")
    again, q = _guard(store)
    again.context("a", 30_000)
    again.context("a", 770_000)
    assert [i.kind for i in q.queued("a")] == [Kind.COMPACT]


def test_small_disagreements_near_a_threshold_do_not_rearm(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    store.upsert_agent("a", "claude", "id", "h")
    guard, q = _guard(store)
    for tokens in (501_000, 499_000, 502_000, 480_000, 505_000):
        guard.context("a", tokens)
    assert len(q.queued("a")) == 1
