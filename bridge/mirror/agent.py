"""One agent's transcript -> its chat channel, in order, exactly once.

An :class:`AgentMirror` owns one agent: it knows which transcript file is current (following
rotation to a new file only after finishing the old one), reads new complete lines from the
stored offset, parses them with the agent's runtime, renders what is mirrored and delivers it
through the ledger protocol (intent, post, commit). Signals (turn ends, context size) are handed
to listeners for the lifecycle machinery. The file watching that wakes mirrors lives in
:mod:`bridge.mirror.fleet`.

Exactly once, on every path:

- one event id is posted at most once per read pass too (Codex writes a command's output twice,
  as ``item_completed`` and ``function_call_output``, both ``result:<call_id>``);
- an intent whose outcome is unknown (a crash, or retries that ran out) is looked up
  (``find_posted``) before anything is posted in a pass; if the look-up fails, nothing is posted
  and the pass is retried later;
- a post the backend refuses for good (:class:`Undeliverable`) is recorded ``skipped``, counted,
  and alerted once per agent and reason (log, and the channel when it still takes posts);
- any other failure backs off (2 s doubling to 5 minutes), never a tight loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bridge.chat.protocol import ChatBackend, Outgoing, Undeliverable
from bridge.mirror.alerts import alert_skipped
from bridge.mirror.batch import Batch, Part, at, take_group
from bridge.mirror.routing import Router, route_event
from bridge.mirror.tail import Line, read_new_lines
from bridge.render.event import render_event
from bridge.render.split import split_message
from bridge.store.ledger import Ledger, TranscriptState
from bridge.store.position import Position
from bridge.store.retry import BACKOFF_MAX_S, is_store_error
from bridge.store.routes import Place
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
        if router is not None:
            router.bind(ledger.store)
        self.current: TranscriptState | None = ledger.current_transcript(slug)
        self._lock = asyncio.Lock()
        self.delivered = 0
        self.unknown = UnknownTally(ledger.store, slug)  # record types the parser did not know
        self.failures = 0
        """Passes in a row that failed without delivering (the backoff; a metric)."""
        self._retry_at = 0.0
        self._alerted: set[str] = set()

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
            known = await asyncio.to_thread(self.known_session)
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
            self.current = await asyncio.to_thread(
                self.ledger.follow, self.slug, str(found.path), found.session_id
            )
        await self.pump()

    # -- delivery ---------------------------------------------------------------------------

    async def settle(self) -> None:
        """Resolve intents left by a crash (at start-up; every flush does it again first).

        A failing look-up here is only logged: nothing is posted for those intents until a
        flush has looked them up."""
        try:
            await self._settle()
        except Exception as exc:  # the flush settles them before posting
            log.warning("%s: could not settle unfinished posts yet (%s)", self.slug, exc)

    async def _settle(self) -> set[str]:
        """Look every pending intent up; commit the ones that arrived, drop the rest (they are
        posted again). Returns the ids found. Raises if the look-up fails."""
        pending = await asyncio.to_thread(self.ledger.pending, self.slug)
        if not pending:
            return set()
        places = {(p.channel or self.channel, p.thread) for p in pending}
        found: dict[str, str] = {}
        for place in places:
            channel, thread = place
            here = [p for p in pending if (p.channel or self.channel, p.thread) == place]
            ids = sorted({i for p in here for i in (p.event_id, p.first)})
            found.update(await self.backend.find_posted(channel, ids, thread))
        arrived: dict[str, str] = {}
        for p in pending:
            ref = found.get(p.event_id)
            if ref is None and found.get(p.first, "").startswith("file:"):
                ref = found[p.first]  # an upload is found by its message's first id only
            if ref is not None:
                arrived[p.event_id] = ref
        lost = [p.event_id for p in pending if p.event_id not in arrived]
        await asyncio.to_thread(self.ledger.settle, self.slug, arrived, lost)
        done = len(arrived)
        log.info("%s: settled %d unfinished posts (%d had arrived)", self.slug, len(pending), done)
        return set(arrived)

    async def pump(self) -> int:
        """Deliver every complete new line of the current transcript."""
        async with self._lock:
            wait = self._retry_at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)  # back off after failures: never a tight loop
            before = self.current
            try:
                sent = await self._drain()
            except Exception as exc:  # a pass that moved on before failing starts over
                self.failures = 1 if self.current is not before else self.failures + 1
                longest = BACKOFF_MAX_S if is_store_error(exc) else MAX_BACKOFF
                self._retry_at = time.monotonic() + min(2.0**self.failures, longest)
                raise
            self.failures, self._retry_at = 0, 0.0
            return sent

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
            batch = Batch(state.path, result.position, source)
            if self.router is not None:
                start = result.lines[0].offset if result.lines else result.position.offset
                place = Place(state.path, result.position.generation, start)
                await asyncio.to_thread(self.router.resume, self.slug, place)
            await self._collect_all(batch, result.lines)
            total += await self._flush(batch)
            await asyncio.to_thread(
                self.ledger.advance, self.slug, state.path, batch.position, bad=len(batch.bad)
            )
            await asyncio.to_thread(self.unknown.flush)
            self.current = TranscriptState(
                state.path, state.session_id, batch.position, state.bad_lines
            )
        self.delivered += total
        return total

    async def _collect_all(self, batch: Batch, lines: tuple[Line, ...]) -> None:
        """Parse and render ``lines`` into the batch, then drop what is done with (one ledger
        query for the lot, not one per event)."""
        first = len(batch.parts)
        for n, line in enumerate(lines):
            await self._collect(batch, line)
            if n % 64 == 63:
                await asyncio.sleep(0)  # let other agents' mirrors in during a catch-up
        fresh = batch.parts[first:]
        if fresh:
            done = await asyncio.to_thread(
                self.ledger.done_among, self.slug, [p.event_id for p in fresh]
            )
            if done:
                batch.parts[first:] = [p for p in fresh if p.event_id not in done]

    async def _read_on(self, batch: Batch) -> None:
        """While a message waited for its slot the transcript may have grown: take those lines
        into the batch now, so they leave in the same message. A reset file is left for the
        next pass (it starts a new batch under a new generation)."""
        result = await asyncio.to_thread(read_new_lines, Path(batch.path), batch.position)
        if result.reset or not result.lines:
            return
        await self._collect_all(batch, result.lines)
        batch.position = result.position

    async def _collect(self, batch: Batch, line: Line) -> None:
        """Parse one line into parts to post (checked against the ledger by the caller)."""
        if line.oversized:
            batch.bad.append(line.end)
            log.warning(
                "%s: skipped an oversized line at byte %d of %s", self.slug, line.offset, batch.path
            )
            return
        parsed = self.runtime.parse_line(line.data, line.offset, batch.source)
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
            place = Place(batch.path, batch.position.generation, line.offset)
            route = await route_event(self.router, self.slug, event, place)
            if route.skip:
                continue
            rendered = render_event(event, show_thinking=self.show_thinking)
            if rendered is None:
                continue
            text = f"{route.header}\n{rendered.text}" if route.header else rendered.text
            pieces = [text] if rendered.as_file else split_message(text)
            for i, piece in enumerate(pieces):
                event_id = event.id if i == 0 else f"{event.id}#{i}"
                if event_id in batch.seen:
                    continue  # already in this pass (an event written twice)
                batch.seen.add(event_id)
                batch.parts.append(
                    Part(
                        event_id,
                        piece,
                        route.thread,
                        rendered.as_file,
                        rendered.filename,
                        line.offset,
                        line.end,
                    )
                )

    async def _flush(self, batch: Batch) -> int:
        """Post the batch in order: one message per part, or coalesced when the backend is
        rate-limited; each post's ids and the offset it allows commit together.

        A rate-limited backend's slot is taken *before* the next message is built: if it had to
        wait, the lines written meanwhile are read and join the message, and that message's
        intent is recorded in the transaction committing the previous one. An unpaced backend
        (the console) has its next :data:`AHEAD` messages' intents recorded at once, in the
        transaction committing the ones posted since: a catch-up then costs one transaction per
        :data:`AHEAD` messages, and a crash leaves at most that many intents for the look-up
        (``find_posted``) to settle. Whatever way the loop ends, commits still owed are written."""
        unsettled = bool(batch.parts) and bool(
            await asyncio.to_thread(self.ledger.pending, self.slug)
        )
        if unsettled:
            arrived = await self._settle()  # a look-up first, or nothing goes out
            batch.parts = [p for p in batch.parts if p.event_id not in arrived]
        i, sent = 0, 0
        coalesce = self.backend.coalesce
        reserve = self.backend.reserve if coalesce else None
        alone: set[str] = set()  # parts of a refused coalesced message: retried one by one
        owed: list[tuple[tuple[str, ...], str]] = []  # posted, not yet committed
        owed_at: tuple[Position, int] | None = None  # the offset they allow, bad lines counted
        intended = 0  # parts before this index have their intents recorded
        yielded = time.monotonic()
        try:
            while i < len(batch.parts):
                if reserve is not None:
                    waited = await reserve(self.channel)
                    if waited > 0 and take_group(batch.parts, i, True, alone) == len(batch.parts):
                        await self._read_on(batch)  # everything left fits: let more join it
                parts, start = batch.parts, i
                i = take_group(parts, i, coalesce, alone)
                group = parts[start:i]
                ids = tuple(p.event_id for p in group)
                if start >= intended:
                    plan, intended = self._plan(parts, start, coalesce, alone, reserve is None)
                    await asyncio.to_thread(
                        self.ledger.commit_and_intend,
                        self.slug, owed, batch.path, owed_at, plan, self.channel,
                    )  # fmt: skip
                    owed, owed_at = [], None
                msg = Outgoing(
                    self.slug,
                    self.channel,
                    "\n".join(p.text for p in group),
                    ids[0],
                    thread=group[0].thread,
                    as_file=group[0].as_file,
                    filename=group[0].filename,
                    event_ids=ids,
                )
                refused: Undeliverable | None = None
                try:
                    ref = (await self.backend.post(msg)).ref
                except Undeliverable as exc:
                    if exc.channel_ok and len(group) > 1:
                        alone.update(ids)  # only the part Slack refuses is skipped, not its company
                        i = intended = start  # plan (and record) its parts again, one by one
                        continue
                    refused = exc
                # The offset may pass a line only once every part of it is posted.
                safe = parts[i].line_start if i < len(parts) else group[-1].line_end
                counted = [end for end in batch.bad if end <= safe]
                batch.bad = [end for end in batch.bad if end > safe]
                pos = at(batch.position, safe)
                if refused is None:
                    owed.append((ids, ref))
                    owed_at = (pos, len(counted) + (owed_at[1] if owed_at else 0))
                else:
                    await asyncio.to_thread(
                        self.ledger.commit_and_intend,
                        self.slug, owed, batch.path, owed_at, [], self.channel,
                    )  # fmt: skip
                    owed, owed_at = [], None
                    await asyncio.to_thread(
                        self.ledger.skip_posts, self.slug, ids, refused.reason,
                        path=batch.path, position=pos, bad=len(counted),
                    )  # fmt: skip
                    await alert_skipped(
                        self.slug, self.channel, self.ledger, self.backend, self._alerted, ids,
                        refused,
                    )  # fmt: skip
                sent += len(group)
                if time.monotonic() - yielded > YIELD_EVERY:
                    await asyncio.sleep(0)  # a catch-up must not starve the other agents' mirrors
                    yielded = time.monotonic()
        finally:
            if owed:
                await asyncio.to_thread(
                    self.ledger.commit_and_intend,
                    self.slug, owed, batch.path, owed_at, [], self.channel,
                )  # fmt: skip
        return sent

    @staticmethod
    def _plan(
        parts: list[Part], start: int, coalesce: bool, alone: set[str], ahead: bool
    ) -> tuple[list[tuple[tuple[str, ...], str | None]], int]:
        """The messages whose intents to record now, from ``parts[start]``: the next one, or
        (``ahead``: an unpaced backend) the next :data:`AHEAD`; and the index after them."""
        plan: list[tuple[tuple[str, ...], str | None]] = []
        j = start
        while j < len(parts) and len(plan) < (AHEAD if ahead else 1):
            end = take_group(parts, j, coalesce, alone)
            plan.append((tuple(p.event_id for p in parts[j:end]), parts[j].thread))
            j = end
        return plan, j


AHEAD = 64
"""Messages whose intents an unpaced backend's catch-up records in one transaction."""
YIELD_EVERY = 0.002
"""A catch-up whose posts never suspend (an unpaced backend) yields to the loop this often."""
MAX_BACKOFF = 300.0
"""Longest wait between two attempts of a mirror whose posts keep failing with no progress (a
store error waits at most :data:`~bridge.store.retry.BACKOFF_MAX_S`: the database is cheap to
ask again, and a mirror must be back within seconds of it)."""
