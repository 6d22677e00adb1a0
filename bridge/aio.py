"""Two asyncio idioms every long-running loop here uses, written once.

- :func:`wait_event`: sleep until an event is set or a timeout passes, whichever is first (how
  each loop paces itself while staying instantly stoppable).
- :class:`TaskSet`: fire-and-forget tasks kept referenced until they finish (asyncio holds only
  weak references to tasks, so an unreferenced one can vanish mid-flight).
- :func:`watch_lag`: a WARNING whenever the loop was stalled (a blocking call on it), so the
  rule "nothing blocks the loop" is seen in production logs and checked by tests.

A leaf module: imports nothing from the rest of ``bridge``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
import traceback
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

log = logging.getLogger("agentbridge.loop")

STALL_WARN_S = 0.1
"""A loop held up longer than this is logged: a Slack ack has 3 s, a hook client a few, and
everything on the loop (every agent's hooks, mirrors, steering) waits while one call blocks."""


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; True when it was set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=timeout)
    return event.is_set()


class TaskSet:
    """Background tasks owned by one event loop, referenced until done."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Start ``coro`` on the running loop (call from that loop's thread only)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __len__(self) -> int:
        return len(self._tasks)


async def watch_lag(
    stop: asyncio.Event,
    *,
    threshold: float = STALL_WARN_S,
    every: float = 0.05,
    stuck: float | None = None,
) -> None:
    """Until ``stop``: wake every ``every`` seconds and log "event loop stalled N ms" when a
    wake-up came more than ``threshold`` late because something ran on the loop that long without
    yielding. Time the loop's thread spent waiting for a CPU (a busy machine, read from the
    kernel's ``/proc/thread-self/schedstat``, an in-memory read) is not a stall of ours and is
    not counted, so the warning means a blocking call, not a loaded box. A sampling thread
    notes where the loop was while it was stuck, and the warning says so (the culprit); a loop
    still stuck after ``stuck`` seconds (:data:`STUCK_S`) is reported by that thread at once."""
    sampler = _Sampler(threading.get_ident(), threshold, STUCK_S if stuck is None else stuck)
    sampler.start()
    try:
        while not stop.is_set():
            start, queued = time.monotonic(), _run_queue_wait()
            sampler.tick = start + every
            await wait_event(stop, every)
            late = time.monotonic() - start - every - (_run_queue_wait() - queued)
            if late > threshold:
                log.warning("event loop stalled %d ms%s", late * 1000, sampler.take())
            sampler.seen = ""
    finally:
        sampler.done.set()


STUCK_S = 10.0
"""A loop late by this much is reported from the sampling thread, with its whole stack, while
it is still stuck: a loop blocked for good (a deadlock) never comes back to log its stall."""


class _Sampler(threading.Thread):
    """Looks at the loop thread's stack while the loop is late (see :func:`watch_lag`)."""

    def __init__(self, loop_thread: int, threshold: float, stuck: float) -> None:
        super().__init__(name="loop-lag", daemon=True)
        self.loop_thread = loop_thread
        self.threshold = threshold
        self.stuck = stuck
        self.tick = time.monotonic()
        self.seen = ""
        self.done = threading.Event()

    def run(self) -> None:
        told = 0.0  # the tick of the stall already reported as stuck
        while not self.done.wait(self.threshold / 2):
            tick = self.tick
            if time.monotonic() - tick > self.stuck and told != tick:
                told = tick  # stuck, not slow: the stall will not end to report itself
                frame = sys._current_frames().get(self.loop_thread)
                at = "".join(traceback.format_stack(frame)) if frame is not None else "?"
                log.error("event loop stuck for %.1f s; it is at:\n%s", self.stuck, at)
            if time.monotonic() - tick > self.threshold / 2 and not self.seen:
                frame = sys._current_frames().get(self.loop_thread)
                if frame is not None:
                    stack = traceback.extract_stack(frame)
                    ours = [f for f in stack if "/bridge/" in f.filename][-3:]
                    where = [
                        *reversed(stack[-3:]),
                        *(f for f in reversed(ours) if f not in stack[-3:]),
                    ]
                    self.seen = " <- ".join(
                        f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in where
                    )

    def take(self) -> str:
        return f"; the loop was at {self.seen}" if self.seen else ""


def _run_queue_wait() -> float:
    """Seconds this thread has spent runnable but waiting for a CPU (0 where unknown)."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as fh:
            return int(fh.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0
