"""The limit watch's continue prompt survives a crash, and every source's reset time counts
(issue 20 items 14 and 15); the screen side is in tests/unit/test_limit_screen.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridge.config.watchdog import WatchdogConfig
from bridge.lifecycle import limits as limits_module
from bridge.lifecycle.activity import Activity, ActivityTracker
from bridge.lifecycle.limits import LimitWatch
from bridge.lifecycle.notice import Alert
from bridge.store.db import Store
from bridge.store.queue import Kind, PromptQueue
from runtimes.events import Event, EventKind

CFG = WatchdogConfig(limit_grace_seconds=5, limit_fallback_minutes=1)


class Crash(Exception):
    """The runner dying between two steps (a kill shows the same state: nothing after it ran)."""


def runner(store: Store, clock: list[float], alerts: list[Alert]) -> LimitWatch:
    """A fresh LimitWatch over the same store: what a restarted runner builds."""
    tracker = ActivityTracker()
    tracker.get("a").state = Activity.WORKING
    return LimitWatch(
        store, tracker, PromptQueue(store), lambda _s: CFG, alerts.append, clock=lambda: clock[0]
    )


def continues(store: Store) -> list[Any]:
    sql = "SELECT id FROM prompt_queue WHERE slug = 'a' AND kind = ?"
    rows = store.query(sql, (Kind.CONTINUE,))
    return list(rows)


def test_a_crash_between_queueing_and_recording_the_continue_queues_it_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "s.db")
    clock, alerts = [1000.0], []
    first = runner(store, clock, alerts)
    first.signal("a", Event(EventKind.USAGE_LIMIT, "x"))
    clock[0] = 1070.0  # past the 60 s fallback and the 5 s grace
    # Whichever of the two steps (record continued_at, queue the prompt) comes second fails.
    steps: list[str] = []
    real_save, real_enqueue = limits_module.stored.save, PromptQueue.enqueue

    def step(name: str) -> None:
        steps.append(name)
        if len(steps) == 2:
            raise Crash(name)

    def save(store_: Store, slug: str, wait: Any) -> None:
        if wait is not None and wait.continued_at is not None:
            step("save")
        real_save(store_, slug, wait)

    def enqueue(self: PromptQueue, *args: Any, **kwargs: Any) -> int | None:
        step("enqueue")
        return real_enqueue(self, *args, **kwargs)

    monkeypatch.setattr(limits_module.stored, "save", save)
    monkeypatch.setattr(PromptQueue, "enqueue", enqueue)
    with pytest.raises(Crash):
        first.tick()
    monkeypatch.undo()
    assert steps == ["enqueue", "save"]  # queued first, then recorded
    second = runner(store, clock, alerts)  # the restarted runner
    assert "a" in second.tracker.held  # still waiting: the continue was never recorded
    second.tick()
    second.tick()
    assert len(continues(store)) == 1
    assert second.waits["a"].continued_at == 1070.0
    assert "a" not in second.tracker.held


def test_a_failed_record_is_retried_by_the_next_tick_of_the_same_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "s.db")
    clock, alerts = [1000.0], []
    watch = runner(store, clock, alerts)
    watch.signal("a", Event(EventKind.USAGE_LIMIT, "x"))
    clock[0] = 1070.0
    real_save = limits_module.stored.save

    def failing(store_: Store, slug: str, wait: Any) -> None:
        raise Crash("database gone")

    monkeypatch.setattr(limits_module.stored, "save", failing)
    with pytest.raises(Crash):
        watch.tick()
    monkeypatch.setattr(limits_module.stored, "save", real_save)
    watch.tick()
    assert len(continues(store)) == 1
    assert limits_module.stored.load(store, "a") is not None
    assert limits_module.stored.load(store, "a").continued_at == 1070.0  # type: ignore[union-attr]
