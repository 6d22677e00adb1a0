"""One agent's transcript -> its chat channel, in order, exactly once.

An :class:`AgentMirror` owns one agent: it knows which transcript file is current (following
rotation to a new file only after finishing the old one), reads new complete lines from the
stored offset, parses them with the agent's runtime, renders what is mirrored and delivers it
through the ledger protocol (intent, post, commit). Signals (turn ends, context size) are handed
to listeners for the lifecycle machinery. The file watching that wakes mirrors lives in
:mod:`bridge.mirrors`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bridge.chat import ChatBackend, Outgoing
from bridge.format import render_event, split_message
from bridge.ledger import Ledger, TranscriptState
from bridge.tail import Line, Position, read_new_lines
from runtimes import LaunchContext, Runtime, TranscriptRef
from runtimes.events import Event

log = logging.getLogger("agentbridge.mirror")

Listener = Callable[[str, Event], None]


class AgentMirror:
    def __init__(
        self,
        slug: str,
        runtime: Runtime,
        context: Callable[[], LaunchContext],
        launched_at: Callable[[], float | None],
        ledger: Ledger,
        backend: ChatBackend,
        channel: str,
        *,
        show_thinking: bool = False,
        listeners: list[Listener] | None = None,
    ) -> None:
        self.slug = slug
        self.runtime = runtime
        self.context = context
        self.launched_at = launched_at
        self.ledger = ledger
        self.backend = backend
        self.channel = channel
        self.show_thinking = show_thinking
        self.listeners = listeners if listeners is not None else []
        self.current: TranscriptState | None = ledger.current_transcript(slug)
        self._lock = asyncio.Lock()
        self.delivered = 0

    # -- which file -------------------------------------------------------------------------

    def roots(self) -> list[Path]:
        return self.runtime.transcript_roots(self.context())

    def _locate(self) -> TranscriptRef | None:
        ctx = self.context()
        started = self.launched_at()
        since = datetime.fromtimestamp(started, UTC) if started else datetime.now(UTC)
        return self.runtime.find_transcript(ctx, ctx.known_session_id, since)

    async def refresh(self) -> None:
        """Find the current transcript; on rotation finish the old file, then switch."""
        async with self._lock:
            known = self.context().known_session_id
            if self.current is not None and known and self.current.session_id == known:
                return  # still the same session: nothing to look up
            found = await asyncio.to_thread(self._locate)
            if found is None:
                return
            if self.current is not None and self.current.path == str(found.path):
                return
            if self.current is not None:
                await self._drain()  # everything the old file still holds goes out first
                log.info("%s: transcript rotated to %s", self.slug, found.path)
            else:
                log.info("%s: following %s", self.slug, found.path)
            self.current = self.ledger.follow(self.slug, str(found.path), found.session_id)
        await self.pump()

    # -- delivery ---------------------------------------------------------------------------

    async def settle(self) -> None:
        """Resolve intents left by a crash: posted ones are recorded, the rest re-posted later."""
        pending = self.ledger.pending(self.slug)
        if not pending:
            return
        channels = {channel or self.channel for _, channel in pending}
        found: dict[str, str] = {}
        for channel in channels:
            ids = [eid for eid, ch in pending if (ch or self.channel) == channel]
            found.update(await self.backend.find_posted(channel, ids))
        for event_id, _ in pending:
            if event_id in found:
                self.ledger.commit_post(self.slug, event_id, found[event_id])
            else:
                self.ledger.drop_intent(self.slug, event_id)
        log.info(
            "%s: settled %d unfinished posts (%d had arrived)", self.slug, len(pending), len(found)
        )

    async def pump(self) -> int:
        """Deliver every complete new line of the current transcript."""
        async with self._lock:
            return await self._drain()

    async def _drain(self) -> int:
        total = 0
        while self.current is not None:
            state = self.current
            result = await asyncio.to_thread(read_new_lines, Path(state.path), state.position)
            if result.reset:
                log.warning(
                    "%s: %s was %s; reading it again from the start",
                    self.slug,
                    state.path,
                    result.reset,
                )
            if not result.lines and result.position == state.position:
                break
            source = Path(state.path).stem
            if result.position.generation:
                source += f".g{result.position.generation}"
            for line in result.lines:
                total += await self._deliver_line(state.path, source, line, result.position)
            self.ledger.advance(self.slug, state.path, result.position)
            self.current = TranscriptState(
                state.path, state.session_id, result.position, state.bad_lines
            )
        self.delivered += total
        return total

    async def _deliver_line(self, path: str, source: str, line: Line, pos: Position) -> int:
        if line.oversized:
            self.ledger.advance(self.slug, path, _at(pos, line.end), bad=1)
            log.warning(
                "%s: skipped an oversized line at byte %d of %s", self.slug, line.offset, path
            )
            return 0
        parsed = self.runtime.parse_line(line.data, line.offset, source)
        if parsed.bad:
            self.ledger.advance(self.slug, path, _at(pos, line.end), bad=1)
            log.warning(
                "%s: skipped a malformed line at byte %d of %s", self.slug, line.offset, path
            )
            return 0
        posts: list[tuple[str, Outgoing]] = []
        for event in parsed.events:
            for listener in self.listeners:
                listener(self.slug, event)
            if not event.mirrored:
                continue
            rendered = render_event(event, show_thinking=self.show_thinking)
            if rendered is None:
                continue
            parts = [rendered.text] if rendered.as_file else split_message(rendered.text)
            for i, text in enumerate(parts):
                event_id = event.id if i == 0 else f"{event.id}#{i}"
                posts.append(
                    (
                        event_id,
                        Outgoing(
                            self.slug,
                            self.channel,
                            text,
                            event_id,
                            as_file=rendered.as_file,
                            filename=rendered.filename,
                        ),
                    )
                )
        sent = 0
        for i, (event_id, msg) in enumerate(posts):
            last = i == len(posts) - 1
            if self.ledger.is_posted(self.slug, event_id):
                continue
            self.ledger.record_intent(self.slug, event_id, msg.channel)
            posted = await self.backend.post(msg)
            self.ledger.commit_post(
                self.slug,
                event_id,
                posted.ref,
                path=path if last else None,
                position=_at(pos, line.end) if last else None,
            )
            sent += 1
        return sent


def _at(pos: Position, offset: int) -> Position:
    return Position(offset, pos.inode, pos.generation)
