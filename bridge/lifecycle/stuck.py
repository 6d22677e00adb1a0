"""Turns that hang, and turns that run too long; plus the screen as a signal source.

A turn counts as stuck when it has been ``working`` for ``stuck_after_minutes`` with no
transcript line, no hook (status-line refreshes do not count: Claude runs that command while
merely animating) and no change on screen. "No change" compares the runtime's fingerprint of
the pane, which leaves out spinners and counters (``Working (10m 13s)``), so a stalled model
stream (both CLIs then only animate for five minutes before retrying) counts as no progress.
A stuck turn gets one alert; it may get another only after a hook or a transcript line has
shown it alive again (a change on screen only restarts the clock: Claude shows a retry
countdown in a stalled stream).

``max_turn_minutes``: a turn running longer (counted from its start; time spent waiting for a
person's answer counts, since the turn is open, but it is only cut while ``working``) is
interrupted with the runtime's interrupt key and reported, once per turn.

The same pane captures (every :data:`POLL_S` seconds, only for agents that are working) feed
the runtime's screen signals (a usage-limit line) to the limit watch. A ``live`` signal (the
CLI's present state, such as Claude's retry line at a limit) is passed on at every look, the
first look at a turn included: a limit hit at the turn's first request is on screen before the
watcher first looks. Any other line counts only when it was not on the previous capture, so a
limit line still on screen from an old turn is not news.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bridge.aio import TaskSet, wait_event
from bridge.config.watchdog import WatchdogConfig
from bridge.fleet.tmux import TmuxError, TmuxServer
from bridge.lifecycle.activity import Activity, ActivityTracker
from bridge.lifecycle.limits import duration
from bridge.lifecycle.notice import Alert, AlertSink
from bridge.lifecycle.steer import lock_file_for
from runtimes import Runtime
from runtimes.events import Event

log = logging.getLogger("agentbridge.stuck")

POLL_S = 2.0
#: How many of the pane's last non-empty lines an alert shows.
PANE_LINES = 12
#: States in which a turn is open (it started and has not ended).
IN_TURN = frozenset({Activity.WORKING, Activity.WAITING_INPUT, Activity.COMPACTING})


def last_lines(screen: str, count: int = PANE_LINES) -> str:
    lines = [line.rstrip() for line in screen.splitlines() if line.strip()]
    return "\n".join(lines[-count:])


@dataclass
class TurnWatch:
    started: float | None = None
    progress: float = 0.0
    fingerprint: str | None = None
    screen_ids: set[str] | None = None
    alerted: bool = False
    over: bool = False
    ignored: bool = False
    pane: str = field(default="", repr=False)
    turn_id: str = ""
    """Minted when the turn starts: what an alert's buttons are tied to."""


class StuckWatch:
    def __init__(
        self,
        tracker: ActivityTracker,
        tmux: TmuxServer,
        locks: Path,
        runtime_of: Callable[[str], Runtime | None],
        settings: Callable[[str], WatchdogConfig | None],
        alert: AlertSink,
        *,
        thread_of: Callable[[str], str | None] = lambda _slug: None,
        screen_event: Callable[[str, Event], None] = lambda _slug, _event: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tracker = tracker
        self.tmux = tmux
        self.locks = locks
        self.runtime_of = runtime_of
        self.settings = settings
        self.alert = alert
        self.thread_of = thread_of
        self.screen_event = screen_event
        self.clock = clock
        self.turns: dict[str, TurnWatch] = {}
        self._tasks = TaskSet()

    def _turn(self, slug: str) -> TurnWatch:
        return self.turns.setdefault(slug, TurnWatch(progress=self.clock()))

    # -- signals ----------------------------------------------------------------------------

    def progress(self, slug: str) -> None:
        """A hook or a transcript line: the turn is alive."""
        turn = self._turn(slug)
        turn.progress = self.clock()
        turn.alerted = False

    def changed(self, slug: str, old: Activity, new: Activity) -> None:
        turn = self._turn(slug)
        now = self.clock()
        turn.progress = now
        turn.alerted = False
        if new in IN_TURN and old not in IN_TURN:
            turn.started, turn.over, turn.ignored = now, False, False
            turn.turn_id = uuid.uuid4().hex
        elif new not in IN_TURN:
            turn.started = None

    def turn_of(self, slug: str) -> str | None:
        """The id of the agent's open turn, None when none is open. A turn already running when
        this runner started (no start seen) gets its id at the first ask."""
        if self.tracker.get(slug).state not in IN_TURN:
            return None
        turn = self._turn(slug)
        if not turn.turn_id:
            turn.turn_id = uuid.uuid4().hex
        return turn.turn_id

    def ignore(self, slug: str) -> None:
        """A person said this turn is fine: no more alerts or limits for it."""
        self._turn(slug).ignored = True

    # -- the loop ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.pass_once()
            except Exception:
                log.exception("stuck-turn pass failed")
            await wait_event(stop, POLL_S)

    async def pass_once(self) -> None:
        for slug, agent in list(self.tracker.agents.items()):
            if agent.state is not Activity.WORKING:
                turn = self.turns.get(slug)
                if turn is not None:
                    turn.fingerprint = turn.screen_ids = None
                continue
            await self._look(slug)
            self._judge(slug)

    async def _look(self, slug: str) -> None:
        runtime = self.runtime_of(slug)
        if runtime is None:
            return
        pane = self.tmux.pane(slug, lock_file_for(self.locks, slug))
        try:
            screen = await asyncio.to_thread(pane.capture)
        except TmuxError:
            return
        turn = self._turn(slug)
        turn.pane = screen
        fingerprint = runtime.screen_fingerprint(screen)
        if turn.fingerprint is not None and fingerprint != turn.fingerprint:
            turn.progress = self.clock()  # not re-armed: a retry notice is not a recovery
        turn.fingerprint = fingerprint
        events = runtime.screen_events(screen, self.clock())
        seen = turn.screen_ids
        for event in events:
            # A live line (the CLI's present state) counts at every look, the first one too; a
            # line of history only once it appears: at the first look it may be an old turn's.
            if event.meta.get("live") or (seen is not None and event.id not in seen):
                self.screen_event(slug, event)
        turn.screen_ids = {event.id for event in events}

    def _judge(self, slug: str) -> None:
        cfg = self.settings(slug)
        turn = self._turn(slug)
        if cfg is None or turn.ignored:
            return
        now = self.clock()
        quiet = now - turn.progress
        stuck_after = cfg.stuck_after_minutes
        if stuck_after is not None and not turn.alerted and quiet >= stuck_after * 60:
            turn.alerted = True
            log.warning("%s: turn stuck (no progress for %s)", slug, duration(quiet))
            text = (
                ":warning: This turn looks stuck: no transcript line, no hook and no change "
                f"on screen for {duration(quiet)}."
            )
            pane, thread = last_lines(turn.pane), self.thread_of(slug)
            self.alert(Alert(slug, "stuck", text, pane, thread, turn=self.turn_of(slug)))
        limit = cfg.max_turn_minutes
        ran = now - turn.started if turn.started is not None else 0.0
        if limit is not None and not turn.over and ran >= limit * 60:
            turn.over = True
            self._tasks.spawn(self._over_time(slug, ran))

    async def _over_time(self, slug: str, ran: float) -> None:
        log.warning("%s: turn over max_turn_minutes (%s); interrupting", slug, duration(ran))
        pane = last_lines(self._turn(slug).pane)
        await self.interrupt(slug)
        text = (
            f":stopwatch: This turn ran {duration(ran)}, over the limit (`max_turn_minutes`); "
            "it was interrupted."
        )
        self.alert(Alert(slug, "max_turn", text, pane, self.thread_of(slug)))

    async def interrupt(self, slug: str) -> bool:
        """Press the runtime's interrupt key; True once the CLI shows its input prompt again
        (then the agent is ``idle``: only newer CLIs report an interrupt, e.g. Claude's
        ``Interrupt`` hook, and only the transcript says so otherwise, if it does)."""
        runtime = self.runtime_of(slug)
        if runtime is None:
            return False
        pane = self.tmux.pane(slug, lock_file_for(self.locks, slug))
        try:
            await asyncio.to_thread(pane.send_key, runtime.interrupt_key)
        except TmuxError as err:
            log.warning("%s: could not interrupt: %s", slug, err)
            return False
        for _ in range(40):
            await asyncio.sleep(0.25)
            try:
                screen = await asyncio.to_thread(pane.capture)
            except TmuxError:
                return False
            if runtime.is_ready_screen(screen):
                self.tracker.interrupted(slug)
                log.info("%s: interrupted; at its input prompt", slug)
                return True
        return self.tracker.get(slug).state is not Activity.WORKING
