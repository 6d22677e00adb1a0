"""One agent's transcript -> its chat channel, in order, exactly once.

An :class:`AgentMirror` owns one agent: it knows which transcript file is current (following
rotation to a new file only after finishing the old one), reads new complete lines from the
stored offset, parses them with the agent's runtime, renders what is mirrored and delivers it
through the ledger protocol (intent, post, commit). Signals (turn ends, context size) are handed
to listeners for the lifecycle machinery. The file watching that wakes mirrors lives in
:mod:`bridge.mirror.fleet`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bridge.chat.protocol import ChatBackend, Outgoing
from bridge.mirror.routing import Route, Router
from bridge.mirror.tail import Line, read_new_lines
from bridge.render.event import render_event
from bridge.render.split import split_message
from bridge.store.ledger import Ledger, TranscriptState
from bridge.store.position import Position
from bridge.store.unknown_records import UnknownTally
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
        known_session: Callable[[], str | None],
        ledger: Ledger,
        backend: ChatBackend,
        channel: str,
        *,
        show_thinking: bool = False,
        listeners: list[Listener] | None = None,
        router: Router | None = None,
    ) -> None:
        self.slug = slug
        self.runtime = runtime
        self.context = context
        self.launched_at = launched_at
        self.known_session = known_session
        self.ledger = ledger
        self.backend = backend
        self.channel = channel
        self.show_thinking = show_thinking
        self.listeners = listeners if listeners is not None else []
        self.router = router
        self.current: TranscriptState | None = ledger.current_transcript(slug)
        self._lock = asyncio.Lock()
        self.delivered = 0
        self.unknown = UnknownTally(ledger.store, slug)  # record types the parser did not know

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
            known = self.known_session()
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
        places = {(channel or self.channel, thread) for _, channel, thread in pending}
        found: dict[str, str] = {}
        for channel, thread in places:
            ids = [e for e, ch, th in pending if (ch or self.channel, th) == (channel, thread)]
            found.update(await self.backend.find_posted(channel, ids, thread))
        for event_id, _, _ in pending:
            if event_id in found:
                self.ledger.commit_posts(self.slug, (event_id,), found[event_id])
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
            batch = _Batch(state.path, result.position)
            for n, line in enumerate(result.lines):
                self._collect(batch, line, source)
                if n % 64 == 63:
                    await asyncio.sleep(0)  # let other agents' mirrors in during a catch-up
            total += await self._flush(batch)
            self.ledger.advance(self.slug, state.path, result.position, bad=len(batch.bad))
            self.unknown.flush()
            self.current = TranscriptState(
                state.path, state.session_id, result.position, state.bad_lines
            )
        self.delivered += total
        return total

    def _collect(self, batch: _Batch, line: Line, source: str) -> None:
        """Parse one line into parts to post (already-posted ones are left out)."""
        if line.oversized:
            batch.bad.append(line.end)
            log.warning(
                "%s: skipped an oversized line at byte %d of %s", self.slug, line.offset, batch.path
            )
            return
        parsed = self.runtime.parse_line(line.data, line.offset, source)
        self.unknown.note(parsed.unknown)
        if parsed.bad:
            batch.bad.append(line.end)
            log.warning(
                "%s: skipped a malformed line at byte %d of %s", self.slug, line.offset, batch.path
            )
            return
        for event in parsed.events:
            for listener in self.listeners:
                listener(self.slug, event)
            if not event.mirrored:
                continue
            route = self.router.route(self.slug, event) if self.router else Route()
            if route.skip:
                continue
            rendered = render_event(event, show_thinking=self.show_thinking)
            if rendered is None:
                continue
            text = f"{route.header}\n{rendered.text}" if route.header else rendered.text
            pieces = [text] if rendered.as_file else split_message(text)
            for i, piece in enumerate(pieces):
                event_id = event.id if i == 0 else f"{event.id}#{i}"
                if self.ledger.is_posted(self.slug, event_id):
                    continue
                batch.parts.append(
                    _Part(
                        event_id,
                        piece,
                        route.thread,
                        rendered.as_file,
                        rendered.filename,
                        line.offset,
                        line.end,
                    )
                )

    async def _flush(self, batch: _Batch) -> int:
        """Post the batch in order: one message per part, or coalesced when the backend is
        rate-limited; each post's ids and the offset it allows commit together."""
        parts, i, sent = batch.parts, 0, 0
        coalesce = self.backend.coalesce
        while i < len(parts):
            group = [parts[i]]
            i += 1
            if coalesce and not group[0].as_file:
                size = len(group[0].text)
                while (
                    i < len(parts)
                    and not parts[i].as_file
                    and parts[i].thread == group[0].thread
                    and size + 1 + len(parts[i].text) <= COALESCE_LIMIT
                ):
                    size += 1 + len(parts[i].text)
                    group.append(parts[i])
                    i += 1
            ids = tuple(p.event_id for p in group)
            first = group[0]
            msg = Outgoing(
                self.slug,
                self.channel,
                "\n".join(p.text for p in group),
                ids[0],
                thread=first.thread,
                as_file=first.as_file,
                filename=first.filename,
                event_ids=ids,
            )
            self.ledger.record_intents(self.slug, ids, msg.channel, msg.thread)
            posted = await self.backend.post(msg)
            # The offset may pass a line only once every part of it is posted.
            safe = parts[i].line_start if i < len(parts) else group[-1].line_end
            counted = [end for end in batch.bad if end <= safe]
            batch.bad = [end for end in batch.bad if end > safe]
            self.ledger.commit_posts(
                self.slug,
                ids,
                posted.ref,
                path=batch.path,
                position=_at(batch.position, safe),
                bad=len(counted),
            )
            sent += len(group)
            await asyncio.sleep(0)  # a catch-up must not starve the other agents' mirrors
        return sent


#: Coalesced messages stay well under Slack's 4,000-character comfort limit.
COALESCE_LIMIT = 3500


@dataclass
class _Part:
    event_id: str
    text: str
    thread: str | None
    as_file: bool
    filename: str | None
    line_start: int
    line_end: int


@dataclass
class _Batch:
    path: str
    position: Position
    parts: list[_Part] = field(default_factory=list)
    bad: list[int] = field(default_factory=list)
    """End offsets of malformed lines not yet counted in a commit."""


def _at(pos: Position, offset: int) -> Position:
    return Position(offset, pos.inode, pos.generation)
