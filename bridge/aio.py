"""Two asyncio idioms every long-running loop here uses, written once.

- :func:`wait_event`: sleep until an event is set or a timeout passes, whichever is first (how
  each loop paces itself while staying instantly stoppable).
- :class:`TaskSet`: fire-and-forget tasks kept referenced until they finish (asyncio holds only
  weak references to tasks, so an unreferenced one can vanish mid-flight).

A leaf module: imports nothing from the rest of ``bridge``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any


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
