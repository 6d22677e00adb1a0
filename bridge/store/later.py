"""Store work the event loop hands off instead of doing: in order, in a worker thread, retried.

Signals arrive on the event loop (hooks, transcript events, activity changes), and several of
them cause a store write or a read-then-write (an activity row, a prompt confirmed, the
compaction guard's arming). Done there, one slow or unreachable database would hold up every
agent's hooks and every Slack ack behind it. :class:`Later` takes such a job, runs it with
``asyncio.to_thread``, one job at a time in the order given (a confirm never overtakes the one
before it), retries it while the store is away (:func:`bridge.store.retry.retrying`), and hands
its result back on the loop. A job put again under the same key before it started replaces the
earlier one and moves to the end of the line (an activity row only needs its latest value).

Outside a running loop (unit use, the CLI) a job simply runs at once, in the caller's thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from bridge.store.retry import retrying

log = logging.getLogger("agentbridge.store")

Job = Callable[[], Any]
Then = Callable[[Any], None]


class Later:
    def __init__(self) -> None:
        self._jobs: OrderedDict[Hashable, tuple[str, Job, Then | None]] = OrderedDict()
        self._runner: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def put(self, what: str, job: Job, then: Then | None = None, key: Hashable = None) -> None:
        """Run ``job()`` off the loop, after the jobs before it; then ``then(result)`` on the
        loop. ``what`` names it in the log. ``key``: a pending job under the same key is
        replaced (None: never)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            result = job()
            if then is not None:
                then(result)
            return
        if key is None:
            key = object()
        self._jobs.pop(key, None)
        self._jobs[key] = (what, job, then)
        self._idle.clear()
        if self._runner is None or self._runner.done():
            self._runner = loop.create_task(self._run(), name="store-later")

    async def idle(self) -> None:
        """Wait until every job put so far has run (tests; a clean stop)."""
        await self._idle.wait()

    async def _run(self) -> None:
        while self._jobs:
            _key, (what, job, then) = self._jobs.popitem(last=False)
            try:
                result = await retrying(lambda job=job: asyncio.to_thread(job), what)  # type: ignore[misc]
                if then is not None:
                    then(result)
            except Exception:  # one failed job (a bug) must not stop the ones after it
                log.exception("store: %s failed", what)
        self._idle.set()
