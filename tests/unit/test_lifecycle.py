"""Activity, queue, delivery policy, compaction guard and schedules, without CLIs."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from bridge.config.model import CompactionConfig, parse_config
from bridge.lifecycle.activity import Activity, ActivityTracker
from bridge.lifecycle.compaction import CompactionGuard, Policy, policy
from bridge.lifecycle.deliver import Deliverer
from bridge.lifecycle.schedule import Scheduler
from bridge.store.db import Store
from bridge.store.queue import Kind, PromptQueue
from runtimes.events import Event, EventKind


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "state.db")
    s.upsert_agent("a", "claude", "id", "h")
    return s


def test_hooks_drive_activity_and_death_beats_everything() -> None:
    clock = Clock()
    t = ActivityTracker(grace_seconds=10, clock=clock)
    seen: list[tuple[Activity, Activity]] = []
    t.listeners.append(lambda _s, old, new: seen.append((old, new)))
    t.launched("a", announces=True)
    t.hook("a", "SessionStart", {"source": "startup"})
    t.hook("a", "UserPromptSubmit", {"prompt": "x"})
    t.hook("a", "PreToolUse", {})
    t.hook("a", "Notification", {"notification_type": "permission_prompt"})
    assert t.get("a").state is Activity.WAITING_INPUT
    t.liveness("a", alive=False)
    assert t.get("a").state is Activity.EXITED
    t.hook("a", "Stop", {})  # a straggler from the dying process changes nothing
    assert t.get("a").state is Activity.EXITED
    assert [new for _, new in seen] == [
        Activity.IDLE,
        Activity.WORKING,
        Activity.WAITING_INPUT,
        Activity.EXITED,
    ]


def test_transcript_drives_activity_when_hooks_are_silent() -> None:
    clock = Clock()
    t = ActivityTracker(grace_seconds=10, quiet_seconds=2, clock=clock)
    t.launched("a", announces=False)
    t.screen_ready("a")
    assert t.get("a").state is Activity.IDLE
    t.event("a", Event(EventKind.TURN_START, "t1"))
    assert t.get("a").state is Activity.WORKING
    t.event("a", Event(EventKind.TURN_END, "t1e"))
    t.tick()
    assert t.get("a").state is Activity.WORKING  # quiet period not over yet
    clock.now += 2.5
    t.tick()
    assert t.get("a").state is Activity.IDLE


def test_transcript_lag_does_not_undo_a_hook_stop() -> None:
    t = ActivityTracker(clock=Clock())
    t.launched("a", announces=True)
    t.hook("a", "UserPromptSubmit", {})
    t.hook("a", "Stop", {})
    t.event("a", Event(EventKind.TOOL_CALL, "late"))  # the file lags the screen
    assert t.get("a").state is Activity.IDLE


def test_no_signal_after_grace_then_recovers_on_a_signal() -> None:
    clock = Clock()
    t = ActivityTracker(grace_seconds=10, clock=clock)
    t.launched("a", announces=True)
    clock.now += 11
    t.tick()
    assert t.get("a").state is Activity.NO_SIGNAL
    t.event("a", Event(EventKind.USER_PROMPT, "p", text="hi"))
    assert t.get("a").state is Activity.WORKING


def test_compaction_states() -> None:
    t = ActivityTracker(clock=Clock())
    t.launched("a", announces=True)
    t.hook("a", "SessionStart", {})
    t.hook("a", "PreCompact", {"trigger": "manual"})
    t.hook("a", "PreToolUse", {})  # the summarizer's tools do not end compaction
    assert t.get("a").state is Activity.COMPACTING
    t.hook("a", "SessionStart", {"source": "compact"})
    assert t.get("a").state is Activity.IDLE


def test_queue_lifecycle_dedupe_confirm_and_recover(store: Store) -> None:
    q = PromptQueue(store)
    first = q.enqueue("a", Kind.STEER, "hello  there", dedupe_key="ev1")
    assert first is not None
    assert q.enqueue("a", Kind.STEER, "hello there", dedupe_key="ev1") is None
    assert q.begin(first) and not q.begin(first)
    q.delivered(first)
    assert q.confirm("a", "hello there") is not None
    item = q.get(first)
    assert item is not None and item.status == "confirmed"
    second = q.enqueue("a", Kind.SCHEDULED, "morning")
    assert second is not None and q.begin(second)
    assert [i.id for i in q.recover()] == [second]  # cut off mid-paste: failed, loudly
    recovered = q.get(second)
    assert recovered is not None and recovered.status == "failed"


def test_a_prompt_echoed_before_its_paste_is_recorded_is_confirmed_and_stays_so(
    store: Store,
) -> None:
    """The CLI writes the prompt's line the instant Enter lands, before the deliverer records
    the paste: the echo still finds its row (CI saw `agentbridge send` shown as typed in the
    terminal), and the ``delivered`` that follows does not undo the confirmation."""
    q = PromptQueue(store)
    item = q.enqueue("a", Kind.STEER, "RUN: echo tool", source={"via": "cli"})
    assert item is not None and q.begin(item)
    confirmed = q.confirm("a", "RUN: echo tool")
    assert confirmed is not None and confirmed.id == item
    q.delivered(item)
    after = q.get(item)
    assert after is not None and after.status == "confirmed"
    stamped = store.query("SELECT delivered_at FROM prompt_queue WHERE id = ?", (item,))
    assert stamped[0][0] is not None, "the paste's time is kept"
    q.failed(item, "a late error")
    assert q.recover() == [] and (q.get(item) or after).status == "confirmed"


@pytest.mark.parametrize(
    "kind,state,ok",
    [
        (Kind.STEER, Activity.WORKING, True),
        (Kind.SCHEDULED, Activity.WORKING, False),
        (Kind.NUDGE, Activity.WORKING, False),
        (Kind.COMPACT, Activity.WORKING, False),
        (Kind.COMPACT, Activity.IDLE, True),
        (Kind.STEER, Activity.COMPACTING, False),
        (Kind.STEER, Activity.WAITING_INPUT, False),
        (Kind.SCHEDULED, Activity.STARTING, False),
        (Kind.STEER, Activity.EXITED, False),
    ],
)
def test_delivery_policy(store: Store, kind: Kind, state: Activity, ok: bool) -> None:
    q = PromptQueue(store)
    item_id = q.enqueue("a", kind, "x")
    assert item_id is not None
    item = q.get(item_id)
    assert item is not None
    d = Deliverer(q, ActivityTracker(), None, Path("."), lambda _s: None)  # type: ignore[arg-type]
    assert d.eligible(item, state) is ok


def test_compaction_guard_nudges_once_per_threshold_then_compacts_and_rearms(
    store: Store,
) -> None:
    q = PromptQueue(store)
    notes: list[str] = []
    pol = policy(CompactionConfig(), self_compacts=False, window=1_000_000)
    guard = CompactionGuard(store, q, lambda _s, _w: pol, lambda _s, text: notes.append(text))
    guard.context("a", 520_000)
    guard.context("a", 530_000)
    assert [(i.kind, i.source["threshold"]) for i in q.queued("a")] == [(Kind.NUDGE, 500_000)]
    guard.context("a", 760_000)
    assert [i.kind for i in q.queued("a")] == [Kind.NUDGE, Kind.COMPACT]
    guard.context("a", 770_000)
    assert len(q.queued("a")) == 2 and len(notes) == 2
    # After a restart (a new guard on the same store) nothing is re-sent.
    again = CompactionGuard(store, q, lambda _s, _w: pol, lambda _s, text: notes.append(text))
    again.context("a", 770_000)
    assert len(q.queued("a")) == 2
    again.compacted("a", "compact:1", 770_000, 3_000)
    nudge = q.queued("a")[0]
    assert not again.still_needed(nudge)  # compacted meanwhile: the queued nudge is dropped
    again.context("a", 510_000)
    assert len(q.queued("a")) == 3  # re-armed


def test_policy_percentages_and_runtime_default() -> None:
    cfg = CompactionConfig(soft=["50%"], hard="80%")
    assert policy(cfg, self_compacts=True, window=200_000) == Policy(
        False, (100_000,), 160_000, cfg.nudge, False
    )
    assert policy(cfg.model_copy(update={"enabled": True}), True, 200_000).enabled


def test_missed_schedule_fires_once_when_back_within_grace(tmp_path: Path, store: Store) -> None:
    config = parse_config(
        f"agents:\n  - slug: a\n    workdir: {tmp_path}\n    schedules:\n"
        "      - {cron: '0 6 * * *', prompt: morning nudge, grace_minutes: 60}\n",
        tmp_path / "agents.yaml",
    )
    fired: list[tuple[str, str]] = []

    async def first_run() -> str:
        sched = Scheduler(tmp_path / "schedules.db", lambda s, _k, p: fired.append((s, p)))
        sched.scheduler.start(paused=True)
        sched.sync(config)
        (job_id,) = sched.next_runs()
        # Pretend the runner went down just before 06:00 and 20 minutes have passed.
        missed = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
        sched.scheduler.modify_job(job_id, next_run_time=missed)
        sched.shutdown()
        return job_id

    job_id = asyncio.run(first_run())

    async def back_up() -> None:
        sched = Scheduler(tmp_path / "schedules.db", lambda s, _k, p: fired.append((s, p)))
        sched.scheduler.start(paused=True)
        sched.sync(config)
        sched.scheduler.resume()
        for _ in range(200):
            if fired:
                break
            await asyncio.sleep(0.02)
        nxt = sched.next_runs()[job_id]
        assert nxt > dt.datetime.now(dt.UTC)  # and the next one is tomorrow's
        sched.shutdown()

    asyncio.run(back_up())
    assert fired == [("a", "morning nudge")]


def test_codex_session_start_with_the_first_prompt_does_not_end_the_turn() -> None:
    t = ActivityTracker(clock=Clock())
    t.launched("a", announces=False)
    t.screen_ready("a")
    t.prompt_pasted("a")
    t.hook("a", "SessionStart", {"source": "startup"})
    assert t.get("a").state is Activity.WORKING
    t.hook("a", "Stop", {})
    assert t.get("a").state is Activity.IDLE
