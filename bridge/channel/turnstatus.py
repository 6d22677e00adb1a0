"""One live status line per long turn: posted only once a turn runs a while, edited as it goes.

People watching a channel want to know whether the agent is still at it without a message per
state change, so a turn that is still working after ``lazy`` seconds (default 5) gets one small
message (in the turn's thread when it came from a person), edited in place: working, waiting for
input, compacting. Why lazy, and why it goes away:

- a post spends the channel's posting budget (about one message a second); a short turn's answer
  must not queue behind its own status line, so short turns get none at all;
- edits are ``chat.update``, a different Slack tier from posting, so they never delay the
  mirror; they are throttled to one every few seconds and the latest state always lands;
- when the turn ends the line is deleted (or, on a backend that cannot delete, edited to its
  final state): the answer itself says the turn is done, and a "done" line must never sit above
  the final answer in the thread.

A state that needs a person (waiting for input) is posted without the lazy wait. The line is
posted at least ``settle`` seconds after the turn starts, once the mirror knows which thread the
turn belongs to.

An interrupted turn has no answer to say it is over, so its line stays, edited to say it was
interrupted and by whom (as the CLI reports it: Claude's ``Interrupt`` hook names the source;
otherwise it only says "interrupted"). Such a line is posted even for a short turn, without the
lazy wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

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

_SOURCE = {
    "user": "by the user",
    "session": "by another agent session",
    "system": "by the system (a hook, a permission check or a service)",
}
_VIA = {"terminal": "at the terminal", "client": "through a client"}
_REASON = {
    "permission_denied": "a permission was denied",
    "rewind": "rewound to an earlier message",
    "other": "",
    "stop": "",
}


def interrupted_text(how: dict[str, str | None]) -> str:
    """The final line of an interrupted turn, from the ``INTERRUPTED`` event's meta."""
    source, via, reason = how.get("source"), how.get("via"), how.get("reason")
    parts = [":octagonal_sign: interrupted"]
    if source:
        parts.append(_SOURCE.get(source, f"by {source}"))
    if via:
        parts.append(_VIA.get(via, f"via {via}"))
    why = _REASON.get(reason, reason) if reason else ""
    text = " ".join(parts)
    return f"{text} ({why})" if why else text


@dataclass
class _Line:
    channel: str
    thread: str | None
    ref: str | None = None
    shown: str | None = None
    wanted: str | None = None
    last_edit: float = 0.0
    task: asyncio.Task[None] | None = None
    started: float = field(default_factory=time.monotonic)
    ended: bool = False
    """The turn is over: the line goes away (or shows its final state) and is never posted."""
    final: bool = False
    """The ended turn's line stays (an interrupt): posted if it was not, edited if it was."""
    poke: asyncio.Event = field(default_factory=asyncio.Event)
    """Set on every state change, so a lazy wait ends early for a state that needs a person."""


class TurnStatus:
    def __init__(
        self,
        backend: ChatBackend,
        channel_of: Callable[[str], str],
        thread_of: Callable[[str], str | None],
        *,
        min_interval: float = 3.0,
        settle: float = 1.0,
        lazy: float = 5.0,
    ) -> None:
        self.backend = backend
        self.channel_of = channel_of
        self.thread_of = thread_of
        self.min_interval = min_interval
        self.settle = settle
        self.lazy = lazy
        self.lines: dict[str, _Line] = {}
        self.waiting_of: Callable[[str], tuple[str | None, str | None]] | None = None
        """What an agent waits for (``question`` / ``approval``) and that message's link,
        when the answer is awaited through chat (set by the runner's wiring)."""
        self.interrupt_of: Callable[[str], dict[str, str | None] | None] | None = None
        """How the agent's last turn was interrupted, if it was (the activity tracker's
        ``interruption``; set by the runner's wiring)."""

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
        line.ended = new is Activity.IDLE
        how = self.interrupt_of(slug) if self.interrupt_of and line.ended else None
        if how is not None:
            line.final = True
            line.wanted = interrupted_text(how)
        line.poke.set()
        if line.task is None or line.task.done():
            line.task = asyncio.get_running_loop().create_task(self._apply(slug, line))

    def refresh(self, slug: str) -> None:
        """The interrupted turn's source became known after its line was written: edit it."""
        line = self.lines.get(slug)
        if line is None or not line.final:
            return
        line.poke.set()
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
                await self._until_needed(line)
                if line.ended and not line.final:
                    return  # the turn ended before its line was needed: nothing is posted
                line.thread = line.thread or self.thread_of(slug)
                text = self._final_text(slug, line)
                posted = await self.backend.post(
                    Outgoing(slug, line.channel, text, f"status:{uuid.uuid4()}", thread=line.thread)
                )
                line.ref, line.shown, line.last_edit = posted.ref, text, time.monotonic()
            while self._final_text(slug, line) != line.shown:
                if line.ended and not line.final and await self._remove(line):
                    return
                wait = line.last_edit + self.min_interval - time.monotonic()
                if wait > 0 and not line.ended:
                    await asyncio.sleep(wait)
                text = self._final_text(slug, line)
                await self.backend.update(line.channel, line.ref, text)
                line.shown, line.last_edit = text, time.monotonic()
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a status line is never worth breaking anything for
            log.warning("%s: status line not updated: %s", slug, err)

    def _final_text(self, slug: str, line: _Line) -> str:
        """What the line should say now: an interrupted turn's text is read again when it is
        written, since the hook naming who stopped the turn may come after the transcript's
        own abort marker."""
        if line.final and self.interrupt_of is not None:
            how = self.interrupt_of(slug)
            if how is not None:
                line.wanted = interrupted_text(how)
        return line.wanted or ""

    async def _until_needed(self, line: _Line) -> None:
        """Sleep until the line is worth posting: ``settle`` after the start for any state,
        ``lazy`` while the agent is only working; returns early when the turn ends (an
        interrupted turn's line still waits out ``settle``, for its thread)."""
        while not line.ended or line.final:
            working = line.wanted == TEXT[Activity.WORKING] and not line.final
            patience = self.lazy if working else self.settle
            wait = line.started + patience - time.monotonic()
            if wait <= 0:
                return
            line.poke.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(line.poke.wait(), wait)

    async def _remove(self, line: _Line) -> bool:
        """Delete an ended turn's line; False when the backend cannot (it is edited instead)."""
        if line.ref is None or not await self.backend.delete(line.channel, line.ref):
            return False
        line.shown = line.wanted
        return True

    async def close(self) -> None:
        for line in self.lines.values():
            if line.task and not line.task.done():
                line.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await line.task
