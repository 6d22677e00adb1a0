"""Wiring the agent lifecycle together: signals in, decisions out.

Signals: hook messages (fast), transcript events (the truth), launches and deaths (from the
reconciler), schedule firings. Decisions: the activity of each agent, prompt deliveries at the
right moment, compaction nudges, channel notes. Each concern lives in its own module; this one
only routes between them, so each stays testable alone.

Owner: the event loop. Every signal arrives on it: hook messages from the hook server's
connections, transcript events from the mirror workers, schedule firings (APScheduler runs the
coroutine job on this loop, see :mod:`bridge.lifecycle.schedule`), and launches and deaths from
the reconciler's thread only through ``loop.call_soon_threadsafe``. The store work the signals
cause (an activity row, a confirmed prompt, a new session id, the compaction guard) never runs
on the loop: it goes to :class:`bridge.store.later.Later`, in order, in a worker thread, and
its effects (the confirmed prompt's listeners) come back on the loop. A slow or unreachable
database then delays those records, never the hooks of every agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from bridge.aio import wait_event
from bridge.config.model import Config
from bridge.config.watchdog import WatchdogConfig
from bridge.fleet.tmux import TmuxServer
from bridge.hooks.server import HookMessage, HookServer, TokenBook
from bridge.lifecycle.activity import Activity, ActivityTracker
from bridge.lifecycle.compaction import CompactionGuard, Policy, policy
from bridge.lifecycle.deliver import Deliverer
from bridge.lifecycle.health import Health
from bridge.lifecycle.limits import LimitWatch, when
from bridge.lifecycle.notice import Alert, AlertSink
from bridge.lifecycle.schedule import Scheduler
from bridge.lifecycle.stuck import StuckWatch
from bridge.mirror.routing import TurnRouter
from bridge.store.db import Store
from bridge.store.later import Later
from bridge.store.queue import Kind, PromptQueue, QueueItem
from bridge.store.retry import in_thread_retrying
from runtimes import Runtime, get_runtime
from runtimes.events import Event, EventKind

log = logging.getLogger("agentbridge.lifecycle")

Note = Callable[[str, str], None]


class Lifecycle:
    def __init__(
        self,
        config: Config,
        store: Store,
        tmux: TmuxServer,
        state_dir: Path,
        locks: Path,
        note: Note,
        router: TurnRouter | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.note = note
        self.router = router or TurnRouter()
        self.on_confirmed: list[Callable[[QueueItem], None]] = []
        self.on_task_done: Callable[[str], object] | None = None
        self.on_session: list[Callable[[str], None]] = []
        self.on_events: list[Callable[[str, Event], None]] = []
        """Who else reads transcript events (the answers' pane fallback: tool calls, results)."""
        self.tracker = ActivityTracker(grace_seconds=config.signal_grace_seconds)
        self.queue = PromptQueue(store)
        self.tokens = TokenBook(store)
        self.later = Later()
        """The signals' store work, off the loop (see the module doc)."""
        self.router.pending = self.later.idle  # a prompt is routed once its confirm is in
        self.guard = CompactionGuard(store, self.queue, self._policy, note, self.later)
        self.deliverer = Deliverer(
            self.queue,
            self.tracker,
            tmux,
            locks,
            self._runtime,
            still_needed=self.guard.still_needed,
            escape_before_compact=self._escape_first,
        )
        self.hooks = HookServer(state_dir / "hooks.sock", self.tokens, self.on_hook)
        self.scheduler = Scheduler(state_dir / "schedules.db", self.on_schedule)
        self.on_alert: list[AlertSink] = []
        """The channel side's alert handlers (posts with buttons); without one, a plain note."""
        self.limits = LimitWatch(
            store,
            self.tracker,
            self.queue,
            self._watchdog,
            self._alert,
            wake=self.deliverer.wake.set,
            later=self.later,
        )
        self.stuck = StuckWatch(
            self.tracker,
            tmux,
            locks,
            self._runtime,
            self._watchdog,
            self._alert,
            thread_of=self.router.thread_of,
            screen_event=self.limits.signal,
        )
        self.health = Health(store, tmux, locks, self.tracker, self._alert)
        self.tracker.listeners += [self.stuck.changed, self.limits.changed, self.health.changed]
        self.tracker.listeners.append(self._activity_changed)

    # -- config ---------------------------------------------------------------------------

    def update_config(self, config: Config) -> None:
        self.config = config
        self.tracker.grace = config.signal_grace_seconds
        if self.scheduler.running:
            self.scheduler.sync(config)

    def _runtime(self, slug: str) -> Runtime | None:
        agent = self.config.agent(slug)
        return get_runtime(agent.runtime) if agent else None

    def _policy(self, slug: str, window: int | None) -> Policy | None:
        agent = self.config.agent(slug)
        if agent is None:
            return None
        return policy(agent.compaction, get_runtime(agent.runtime).self_compacts, window)

    def _watchdog(self, slug: str) -> WatchdogConfig | None:
        agent = self.config.agent(slug)
        return agent.watchdog if agent else None

    def _alert(self, alert: Alert) -> None:
        if not self.on_alert:
            self.note(alert.slug, alert.text)
        for sink in self.on_alert:
            sink(alert)

    async def interrupt(self, slug: str, then_continue: bool = False) -> bool:
        """Interrupt the agent's turn (a person's button); optionally queue the continue prompt
        so it picks up where it was."""
        done = await self.stuck.interrupt(slug)
        if then_continue:
            cfg = self._watchdog(slug) or WatchdogConfig()
            await asyncio.to_thread(
                self.queue.enqueue,
                slug,
                Kind.CONTINUE,
                cfg.continue_prompt,
                source={"via": "stuck"},
            )
        self.deliverer.wake.set()
        return done

    def _escape_first(self, slug: str) -> bool:
        agent = self.config.agent(slug)
        return bool(agent and agent.compaction.escape_first)

    # -- signals in ----------------------------------------------------------------------------

    def on_hook(self, msg: HookMessage) -> str | None:
        if msg.event != "statusline" and not self.tracker.get(msg.slug).hooks_heard:
            log.info("%s: hooks reporting (%s)", msg.slug, msg.event)
        self.tracker.hook(msg.slug, msg.event, msg.payload)
        if msg.event != "statusline":  # Claude refreshes its status line while merely animating
            self.stuck.progress(msg.slug)
        runtime = self._runtime(msg.slug)
        for event in runtime.hook_events(msg.event, msg.payload) if runtime else ():
            if event.kind is EventKind.INTERRUPTED:
                how = ", ".join(f"{k} {v}" for k, v in event.meta.items() if v)
                log.info("%s: turn interrupted (%s)", msg.slug, how or "the CLI says no more")
            if event.kind in (EventKind.CONTEXT_SIZE, EventKind.INTERRUPTED):
                self.tracker.event(msg.slug, event)
            self.limits.signal(msg.slug, event)
        if msg.event == "SessionStart":
            self._session_started(msg.slug, msg.payload)
        if msg.event == "UserPromptSubmit":
            prompt = msg.payload.get("prompt")
            if isinstance(prompt, str):
                self._confirm(msg.slug, prompt)
        agent = self.tracker.get(msg.slug)
        if msg.event == "statusline":
            self.guard.context(msg.slug, agent.context_tokens, agent.context_window)
        self.deliverer.wake.set()
        return self.status_line(msg.slug)

    def on_event(self, slug: str, event: Event) -> None:
        """Transcript events, from the mirror (also re-read ones after a restart)."""
        self.tracker.event(slug, event)
        self.stuck.progress(slug)
        self.limits.signal(slug, event)
        if event.kind is EventKind.CONTEXT_SIZE:
            self.guard.context(slug, event.tokens, event.context_window)
        elif event.kind is EventKind.COMPACTION:
            meta = event.meta
            pre, post = meta.get("pre_tokens"), meta.get("post_tokens")
            self.guard.compacted(
                slug,
                event.id,
                pre if isinstance(pre, int) else None,
                post if isinstance(post, int) else None,
            )
        elif event.kind is EventKind.USER_PROMPT:
            self._confirm(slug, event.text)
        elif event.kind is EventKind.TURN_END:
            self.deliverer.wake.set()
        for listener in self.on_events:
            listener(slug, event)

    def _session_started(self, slug: str, payload: dict[str, object]) -> None:
        """The CLI says which session (and transcript) it writes now: a fresh Codex's minted id,
        or a new one after ``/clear`` or ``/new``. The mirror finishes the old file first."""
        session = payload.get("session_id")
        if not isinstance(session, str) or not session:
            return

        def record() -> bool:
            row = self.store.agent(slug)
            if row is None or row.runtime_session_id == session:
                return False
            self.store.set_runtime_session(slug, session)
            launch = self.store.current_launch(slug)
            if launch is not None and launch.exited_at is None:
                self.store.update_launch(launch.id, session_id=session)
            return True

        def recorded(new: bool) -> None:
            if new:
                log.info("%s: session %s (from its SessionStart hook)", slug, session)
                for listener in self.on_session:
                    listener(slug)

        self.later.put(f"{slug}: recording session {session}", record, recorded)

    def _confirm(self, slug: str, text: str) -> None:
        """The runtime echoed a prompt: mark its queue item confirmed, remember its origin."""

        def confirmed(item: QueueItem | None) -> None:
            if item is None:
                return
            self.router.origin(slug, item)
            for listener in self.on_confirmed:
                listener(item)

        self.later.put(
            f"{slug}: confirming a prompt", lambda: self.queue.confirm(slug, text), confirmed
        )

    def on_schedule(self, slug: str, key: str, prompt: str) -> None:
        def queued(item: int | None) -> None:
            log.info("%s: scheduled prompt queued (#%s, %s)", slug, item, key)
            self.deliverer.wake.set()

        self.later.put(
            f"{slug}: queueing scheduled prompt {key}",
            lambda: self.queue.enqueue(slug, Kind.SCHEDULED, prompt, source={"schedule": key}),
            queued,
        )

    def launched(self, slug: str, runtime: Runtime) -> None:
        self.health.launched(slug)
        self.tracker.launched(slug, announces=runtime.announces_launch)
        agent = self.config.agent(slug)
        if agent is not None and agent.ephemeral and agent.task:
            # A fresh launch has no memory of an earlier attempt: the task goes (again) now.
            task, key = agent.task, f"task:{slug}:{time.time():.3f}"
            self.later.put(
                f"{slug}: queueing its task",
                lambda: self.queue.enqueue(
                    slug, Kind.TASK, task, source={"via": "task"}, dedupe_key=key
                ),
                lambda _id: log.info("%s: task queued", slug),
            )

    def adopted(self, slug: str) -> None:
        self.tracker.adopted(slug)

    def down(self, slug: str, crash_loop: bool) -> None:
        self.tracker.liveness(slug, alive=False, crash_loop=crash_loop)

    def _task_finished(self, slug: str) -> bool:
        """An ephemeral agent's task was delivered (worker thread: reads the store)."""
        rows = self.store.query(
            "SELECT 1 FROM prompt_queue WHERE slug = ? AND kind = 'task'"
            " AND status IN ('delivered', 'confirmed')",
            (slug,),
        )
        return bool(rows)

    def _finished(self, slug: str, done: bool) -> None:
        if not done:
            return
        self.note(slug, ":checkered_flag: Task finished; stopping this one-shot agent.")
        log.info("%s: task finished", slug)
        if self.on_task_done is not None:
            self.on_task_done(slug)

    def _activity_changed(self, slug: str, old: Activity, new: Activity) -> None:
        spec = self.config.agent(slug)
        if old is Activity.WORKING and new is Activity.IDLE and spec and spec.ephemeral:
            self.later.put(
                f"{slug}: checking its task",
                lambda: self._task_finished(slug),
                lambda done: self._finished(slug, bool(done)),
            )
        agent = self.tracker.get(slug)
        state, tokens, window = str(new), agent.context_tokens, agent.context_window
        self.later.put(
            f"{slug}: recording activity {state}",
            lambda: self.store.set_activity(slug, state, tokens, window),
            key=("activity", slug),
        )
        log.info("%s: %s -> %s", slug, old, new)
        self.deliverer.wake.set()

    async def _limit_clock(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                self.limits.tick()
            except Exception:
                log.exception("limit watch pass failed")
            await wait_event(stop, 1.0)

    # -- out ----------------------------------------------------------------------------------

    def status_line(self, slug: str) -> str:
        agent = self.tracker.get(slug)
        parts = [f"agentbridge · {slug} · {agent.state}"]
        reset = self.limits.waiting_until(slug)
        if reset is not None:
            parts.append(f"until {when(reset, time.time())}")
        if agent.context_tokens is not None:
            parts.append(f"ctx {agent.context_tokens // 1000}k")
        queued = self.deliverer.queued_counts.get(slug, 0)  # as of the last pass: no store call
        if queued:
            parts.append(f"{queued} queued")
        return " · ".join(parts)

    async def run(self, stop: asyncio.Event) -> None:
        await self.hooks.start()
        for item in await in_thread_retrying(self.queue.recover, "recovering the queue", stop):
            log.warning(
                "%s: %s #%d was being pasted when the runner stopped; not re-sent",
                item.slug,
                item.kind,
                item.id,
            )
            self.note(
                item.slug,
                f":warning: A {item.kind} prompt was being pasted when the "
                "runner stopped; it was not re-sent to avoid a duplicate.",
            )
        await self.scheduler.prepare()
        self.scheduler.start(self.config)
        watchers = [
            asyncio.create_task(self.stuck.run(stop), name="stuck"),
            asyncio.create_task(self._limit_clock(stop), name="limits"),
        ]
        try:
            await self.deliverer.run(stop)
        finally:
            for task in watchers:
                task.cancel()
            self.scheduler.shutdown()
            with contextlib.suppress(Exception):
                await self.hooks.close()
