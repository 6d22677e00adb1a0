"""Pasting queued prompts into agents at the right moment, exactly once.

The loop wakes a few times a second (and whenever activity changes), lets the activity tracker
apply its timers, and for each agent with queued prompts pastes the oldest one its current state
allows (see :mod:`bridge.store.queue` for the policy). An agent that has not announced itself
(a fresh Codex) is checked on screen: its input prompt is the readiness signal.

Once a row is claimed (``delivering``), every way out of :meth:`Deliverer._deliver` records an
outcome: ``delivered``, or ``failed`` with the reason (any exception, expected or not: a full
disk, a tmux error, a bug). A failed row is never re-pasted, because part of it may already sit
in the agent's input (the queue's exactly-once policy); the sender is told instead. If even
recording the outcome fails (the disk is full), it is retried at the start of every pass until
it sticks, and a runner that dies first leaves the row to :meth:`PromptQueue.recover`.

Owner: the event loop. SQLite calls go through ``asyncio.to_thread``; ``wake`` is an
``asyncio.Event`` and may only be set on the loop (from another thread, through
``loop.call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from bridge.aio import wait_event
from bridge.fleet.tmux import SUBMIT_PAUSE_S, PasteResult, TmuxError, TmuxServer
from bridge.lifecycle.activity import Activity, ActivityTracker
from bridge.lifecycle.steer import EmptyPrompt, lock_file_for, steer
from bridge.store.fence import Fenced
from bridge.store.queue import WHILE_WORKING, Kind, PromptQueue, QueueItem
from bridge.store.retry import retrying
from runtimes import Runtime

log = logging.getLogger("agentbridge.deliver")

#: States a prompt may never be pasted in.
BLOCKED = frozenset(
    {
        Activity.STARTING,
        Activity.COMPACTING,
        Activity.WAITING_INPUT,
        Activity.EXITED,
        Activity.CRASH_LOOP,
        Activity.LIMITED,
    }
)

Outcome = Callable[[QueueItem, str], None]

#: The longest wait for an Escape before ``/compact`` to show on screen (so the CLI does not
#: read it together with the paste); an Escape at an empty prompt may show nothing.
ESCAPE_SETTLE_S = 0.5

#: Seconds a compaction is left to its own hooks before the screen is consulted.
COMPACT_SCREEN_AFTER = 5.0


class Deliverer:
    def __init__(
        self,
        queue: PromptQueue,
        tracker: ActivityTracker,
        tmux: TmuxServer,
        locks: Path,
        runtime_of: Callable[[str], Runtime | None],
        *,
        still_needed: Callable[[QueueItem], bool] = lambda _item: True,
        escape_before_compact: Callable[[str], bool] = lambda _slug: False,
    ) -> None:
        self.queue = queue
        self.tracker = tracker
        self.tmux = tmux
        self.locks = locks
        self.runtime_of = runtime_of
        self.still_needed = still_needed
        self.escape_before_compact = escape_before_compact
        self.on_delivered: list[Outcome] = []
        self.on_failed: list[Outcome] = []
        self.wake = asyncio.Event()
        self.queued_counts: dict[str, int] = {}
        """Queued prompts per agent as of the last pass (the status line reads it: no store
        call on the loop for every hook)."""
        self._screen_checked: dict[str, float] = {}
        #: Outcomes that could not be written yet: item id -> (status, reason).
        self._unsettled: dict[int, tuple[str, str]] = {}

    def eligible(self, item: QueueItem, state: Activity) -> bool:
        if state in BLOCKED:
            return False
        if state is Activity.WORKING:
            return item.kind in WHILE_WORKING
        return True  # idle, or no_signal with a ready screen (checked by the caller)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:  # the store away: the pass is retried with backoff until it is back
                await retrying(self.pass_once, "a delivery pass", stop)
            except Exception:
                if not stop.is_set():
                    log.exception("delivery pass failed")
            await wait_event(self.wake, 0.25)
            self.wake.clear()

    async def pass_once(self) -> None:
        await self._settle_pending()
        self.tracker.tick()
        await self._check_screens()
        by_agent: dict[str, list[QueueItem]] = {}
        for item in await asyncio.to_thread(self.queue.queued):
            by_agent.setdefault(item.slug, []).append(item)
        self.queued_counts = {slug: len(items) for slug, items in by_agent.items()}
        for slug, items in by_agent.items():
            items.sort(key=lambda item: item.kind is not Kind.CONTINUE)  # after a limit: first
            state = self.tracker.get(slug).state
            if state is Activity.NO_SIGNAL and not await self._screen_ready(slug):
                continue
            for item in items:
                if not self.eligible(item, state):
                    continue
                # A one-shot agent's task goes in right after its launch: a CLI may report its
                # session before its input box takes an Enter, so wait for the input prompt.
                if item.kind is Kind.TASK and not await self._screen_ready(slug):
                    continue
                await self._deliver(item)
                break  # one paste per agent per pass: the state has changed

    async def _check_screens(self) -> None:
        """Agents starting, or compacting for a while: is the CLI at its input prompt?

        At most once a second per agent; a compaction gets a few seconds first, since its
        own hook normally ends it.
        """
        now = time.monotonic()
        wall = self.tracker.clock()
        for slug, agent in list(self.tracker.agents.items()):
            stale_compaction = (
                agent.state is Activity.COMPACTING and wall - agent.since >= COMPACT_SCREEN_AFTER
            )
            if agent.state is not Activity.STARTING and not stale_compaction:
                continue
            if now - self._screen_checked.get(slug, 0.0) < 1.0:
                continue
            self._screen_checked[slug] = now
            if await self._screen_ready(slug):
                self.tracker.screen_ready(slug)
                log.info("%s: ready (input prompt on screen)", slug)

    async def _screen_ready(self, slug: str) -> bool:
        runtime = self.runtime_of(slug)
        if runtime is None:
            return False
        pane = self.tmux.pane(slug, lock_file_for(self.locks, slug))
        try:
            screen = await asyncio.to_thread(pane.capture)
        except TmuxError:
            return False
        return runtime.is_ready_screen(screen)

    async def _deliver(self, item: QueueItem) -> None:
        if item.kind in (Kind.NUDGE, Kind.COMPACT) and not self.still_needed(item):
            reason = "no longer needed (context below the threshold)"
            await asyncio.to_thread(self.queue.dropped, item.id, reason)
            log.info("%s: dropped queued %s #%d: no longer needed", item.slug, item.kind, item.id)
            return
        if not await asyncio.to_thread(self.queue.begin, item.id):
            return
        # The row is ours and 'delivering': from here every way out records an outcome.
        try:
            pasted = await self._paste(item)
        except asyncio.CancelledError:
            raise  # shutdown mid-paste: recover() at the next start fails it, never re-pastes
        except Exception as err:
            if isinstance(err, (EmptyPrompt, TmuxError)):
                reason = str(err)
            else:
                reason = f"unexpected error while pasting: {type(err).__name__}: {err}"
                log.exception("%s: %s #%d", item.slug, item.kind, item.id)
            await self._settle(item.id, "failed", reason)
            log.warning("%s: %s #%d not delivered: %s", item.slug, item.kind, item.id, reason)
            for listener in self.on_failed:
                listener(item, reason)
            return
        await self._settle(item.id, "delivered", "pasted")
        self.tracker.prompt_pasted(item.slug)
        if item.kind is Kind.COMPACT:
            self.tracker.compaction_started(item.slug)
        log.info("%s: delivered %s #%d (%d chars)", item.slug, item.kind, item.id, pasted.chars)
        for listener in self.on_delivered:
            listener(item, "pasted")

    async def _paste(self, item: QueueItem) -> PasteResult:
        pane = self.tmux.pane(item.slug, lock_file_for(self.locks, item.slug))
        if item.kind is Kind.COMPACT and self.escape_before_compact(item.slug):
            await asyncio.to_thread(pane.send_key, "Escape", settle=ESCAPE_SETTLE_S)
        runtime = self.runtime_of(item.slug)
        pause = runtime.submit_pause if runtime else SUBMIT_PAUSE_S
        shown = runtime.paste_shown if runtime else None
        composer = runtime.composer if runtime else None
        return await asyncio.to_thread(steer, pane, item.text, pause, shown, composer)

    async def _settle(self, item_id: int, status: str, reason: str) -> None:
        """Record a claimed row's outcome; if the store refuses, keep it for the next pass."""
        self._unsettled[item_id] = (status, reason)
        await self._settle_pending()

    async def _settle_pending(self) -> None:
        for item_id, (status, reason) in list(self._unsettled.items()):
            try:
                await asyncio.to_thread(self.queue.settle, item_id, status, reason)
            except Fenced as err:  # moved away: the row is the new host's now
                log.warning("queue #%d: %s recorded by nobody: %s", item_id, status, err)
            except Exception as err:
                log.error("queue #%d: cannot record %s yet (%s); retrying", item_id, status, err)
                return
            del self._unsettled[item_id]
