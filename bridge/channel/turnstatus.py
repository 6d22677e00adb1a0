"""One live status line per turn: posted when a turn starts, edited as it goes.

People watching a channel want to know whether the agent is still at it without a message per
state change, so each turn gets one small message (in the turn's thread when it came from a
person) that is edited in place: working, waiting for input, done. Edits are throttled to one
every few seconds (Slack's chat.update is rate limited too); the latest state always lands.
The line is posted a moment after the turn starts, once the mirror knows which thread the turn
belongs to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from bridge.chat.protocol import ChatBackend, Outgoing
from bridge.lifecycle.activity import Activity

log = logging.getLogger("agentbridge.status")

TEXT = {
    Activity.WORKING: ":hourglass_flowing_sand: working…",
    Activity.WAITING_INPUT: ":raised_hand: waiting for input (attach to the tmux session)",
    Activity.COMPACTING: ":broom: compacting…",
    Activity.IDLE: ":white_check_mark: done, idle",
    Activity.EXITED: ":x: the agent exited; restarting",
    Activity.NO_SIGNAL: ":warning: no signal from the agent",
}


@dataclass
class _Line:
    channel: str
    thread: str | None
    ref: str | None = None
    shown: str | None = None
    wanted: str | None = None
    last_edit: float = 0.0
    task: asyncio.Task[None] | None = None


class TurnStatus:
    def __init__(
        self,
        backend: ChatBackend,
        channel_of: Callable[[str], str],
        thread_of: Callable[[str], str | None],
        *,
        min_interval: float = 3.0,
        settle: float = 1.0,
    ) -> None:
        self.backend = backend
        self.channel_of = channel_of
        self.thread_of = thread_of
        self.min_interval = min_interval
        self.settle = settle
        self.lines: dict[str, _Line] = {}
        self.waiting_of: Callable[[str], tuple[str | None, str | None]] | None = None
        """What an agent waits for (``question`` / ``approval``) and that message's link,
        when the answer is awaited through chat (set by the runner's wiring)."""

    def text_for(self, slug: str, state: Activity) -> str | None:
        """The line for ``state``; waiting on a question asked in chat links to it instead of
        sending people to the tmux session."""
        what, link = self.waiting_of(slug) if self.waiting_of else (None, None)
        if state is Activity.WAITING_INPUT and what:
            target = f"<{link}|the {what}>" if link else f"the {what} posted here"
            return f":raised_hand: waiting for your answer to {target}"
        return TEXT.get(state)

    def changed(self, slug: str, old: Activity, new: Activity) -> None:
        """Activity listener (called on the event loop)."""
        text = self.text_for(slug, new)
        if text is None:
            return
        line = self.lines.get(slug)
        if new is Activity.WORKING and old in (
            Activity.IDLE,
            Activity.STARTING,
            Activity.NO_SIGNAL,
        ):
            if line and line.task and not line.task.done():
                line.task.cancel()
            line = self.lines[slug] = _Line(self.channel_of(slug), None)
        if line is None:
            return
        line.wanted = text
        if line.task is None or line.task.done():
            line.task = asyncio.get_running_loop().create_task(self._apply(slug, line))

    def hint(self, slug: str, thread: str | None) -> None:
        """The turn just pasted came from this thread (known before the transcript says so)."""
        line = self.lines.get(slug)
        if line is not None and line.ref is None and thread:
            line.thread = thread

    async def _apply(self, slug: str, line: _Line) -> None:
        try:
            if line.ref is None:
                await asyncio.sleep(self.settle)  # let the mirror route the turn's prompt first
                line.thread = line.thread or self.thread_of(slug)
                text = line.wanted or ""
                posted = await self.backend.post(
                    Outgoing(slug, line.channel, text, f"status:{uuid.uuid4()}", thread=line.thread)
                )
                line.ref, line.shown, line.last_edit = posted.ref, text, time.monotonic()
            while line.wanted != line.shown:
                wait = line.last_edit + self.min_interval - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                text = line.wanted or ""
                await self.backend.update(line.channel, line.ref, text)
                line.shown, line.last_edit = text, time.monotonic()
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a status line is never worth breaking anything for
            log.warning("%s: status line not updated: %s", slug, err)

    async def close(self) -> None:
        for line in self.lines.values():
            if line.task and not line.task.done():
                line.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await line.task
