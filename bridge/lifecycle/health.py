"""One post when an agent falls into ``crash_loop`` or ``no_signal``, one when it is back.

``crash_loop`` comes with the last launch's exit reason and the dead pane's last lines (tmux
keeps a dead pane on screen, ``remain-on-exit``), which usually name the cause. The agent is
back when it reaches ``idle`` or ``working`` again: merely being relaunched (``starting``) is
not recovery, since a crash-looping CLI is relaunched every ``crash_loop_retry_seconds``.
``no_signal`` is back at the first signal (any hook or transcript line).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from bridge.aio import TaskSet
from bridge.fleet.tmux import TmuxError, TmuxServer
from bridge.lifecycle.activity import Activity, ActivityTracker
from bridge.lifecycle.notice import Alert, AlertSink
from bridge.lifecycle.steer import lock_file_for
from bridge.lifecycle.stuck import last_lines
from bridge.store.db import Store

log = logging.getLogger("agentbridge.health")

UP = frozenset({Activity.IDLE, Activity.WORKING})


class Health:
    def __init__(
        self,
        store: Store,
        tmux: TmuxServer,
        locks: Path,
        tracker: ActivityTracker,
        alert: AlertSink,
    ) -> None:
        self.store = store
        self.tmux = tmux
        self.locks = locks
        self.tracker = tracker
        self.alert = alert
        self.looping: set[str] = set()
        self.silent: set[str] = set()
        self._tasks = TaskSet()

    def launched(self, slug: str) -> None:
        self.silent.discard(slug)  # a new launch gets a new grace period and a new note

    def changed(self, slug: str, old: Activity, new: Activity) -> None:
        if new is Activity.CRASH_LOOP and slug not in self.looping:
            self.looping.add(slug)
            self._tasks.spawn(self._crash_loop(slug))
        elif new in UP and slug in self.looping:
            self.looping.discard(slug)
            log.info("%s: recovered from crash_loop", slug)
            self.alert(
                Alert(slug, "crash_loop_over", f":white_check_mark: Recovered: the agent is {new}.")
            )
        if new is Activity.NO_SIGNAL and slug not in self.silent:
            self.silent.add(slug)
            self.alert(
                Alert(
                    slug,
                    "no_signal",
                    ":warning: No signal from the agent (no hook, no transcript line) "
                    f"within {self.tracker.grace:.0f} s. Its hooks may be broken; "
                    "check `agentbridge doctor` or attach to its tmux session.",
                )
            )
        elif old is Activity.NO_SIGNAL and new is not Activity.NO_SIGNAL and slug in self.silent:
            self.silent.discard(slug)
            self.alert(
                Alert(
                    slug,
                    "no_signal_over",
                    f":white_check_mark: Signal is back: the agent is {new}.",
                )
            )

    async def _crash_loop(self, slug: str) -> None:
        launch = await asyncio.to_thread(self.store.current_launch, slug)
        reason = launch.exit_reason if launch is not None and launch.exit_reason else "unknown"
        pane = self.tmux.pane(slug, lock_file_for(self.locks, slug))
        try:
            screen = await asyncio.to_thread(pane.capture)
        except TmuxError:
            screen = ""
        log.warning("%s: crash_loop (last exit: %s)", slug, reason)
        text = (
            f":rotating_light: The agent is crash-looping (last exit: {reason}); the runner "
            "keeps retrying it. Its last screen lines are below."
        )
        self.alert(Alert(slug, "crash_loop", text, last_lines(screen)))
