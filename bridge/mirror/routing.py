"""Where each mirrored event goes: which thread, with which header, or nowhere.

A turn a person started from Slack is answered in that message's thread, and the prompt itself
is not echoed back (they can see what they wrote). A turn started any other way (a scheduled
prompt, a compaction nudge, someone typing in the tmux pane, ``agentbridge send``) goes
top-level, its prompt shown with a short header saying where it came from.

The origin of a prompt is learned when the queue matches it to a delivered item (by the
runtime's UserPromptSubmit hook or the prompt's transcript line, whichever comes first); the
transcript's USER_PROMPT event then picks the route for the whole turn.

Routing survives crashes (:mod:`bridge.store.routes`): a prompt's route is saved the first time
its line is read, and a line read again (after a restart or a failed post) is routed from that
record, not from memory; each read pass starts from the thread in effect at its offset
(:meth:`TurnRouter.resume`). An origin the runner learned but did not live to use is found again
as a confirmed queue row no route has claimed. Without a store (unit use) it is memory only.

An agent can also be pinned to a thread (a PR reviewer, under its "Reviewing #42" header):
then every turn that no Slack message claims goes into that thread, headers and all.

Threads: the mirror calls :meth:`TurnRouter.route` for a prompt, and :meth:`TurnRouter.resume`,
in a worker thread (they read and write the store), while the loop records origins. The
in-memory maps are guarded by a lock held only around memory, never around a store call, so
the loop never waits for the database through it. Origins are learned off the loop too (the
queue's confirm is a store call): before routing a prompt the mirror awaits
:meth:`TurnRouter.settled`, so an origin already on its way is in memory when it is needed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bridge.store.db import Store
from bridge.store.queue import Kind, QueueItem, echoes, normalized
from bridge.store.routes import Place, SavedRoute, TurnBook
from runtimes.events import Event, EventKind

HEADERS = {
    Kind.SCHEDULED: ":alarm_clock: *Scheduled prompt*",
    Kind.NUDGE: ":hourglass: *Compaction nudge*",
    Kind.COMPACT: ":broom: *Compaction*",
    Kind.TASK: ":clipboard: *Task*",
    Kind.STEER: ":keyboard: *Sent with agentbridge send*",
    Kind.CONTINUE: ":arrow_forward: *Continued after the usage limit*",
}
TYPED = ":keyboard: *Typed in the terminal*"


@dataclass(frozen=True, slots=True)
class Route:
    thread: str | None = None
    skip: bool = False
    header: str | None = None


class Router(Protocol):
    def bind(self, store: Store) -> None: ...

    def resume(self, slug: str, at: Place) -> None: ...

    def route(self, slug: str, event: Event, at: Place | None = None) -> Route: ...

    async def settled(self) -> None: ...


class TurnRouter:
    def __init__(self, store: Store | None = None) -> None:
        self._origins: dict[str, list[tuple[str, QueueItem]]] = {}
        self._thread: dict[str, str | None] = {}
        self._book = TurnBook(store) if store is not None else None
        self._pinned: dict[str, str] = {}
        self._lock = threading.Lock()
        self.pending: Callable[[], Awaitable[None]] | None = None
        """Awaits the origins being recorded now (the lifecycle's confirms), if any."""

    def bind(self, store: Store) -> None:
        """Make routing durable in ``store`` (the mirrors do this; idempotent)."""
        if self._book is None:
            self._book = TurnBook(store)

    def pin(self, slug: str, thread: str | None) -> None:
        """Thread all of ``slug``'s output under ``thread`` (None: unpin)."""
        if thread is None:
            self._pinned.pop(slug, None)
        else:
            self._pinned[slug] = thread
            self._thread.setdefault(slug, thread)

    def pinned(self, slug: str) -> str | None:
        return self._pinned.get(slug)

    def origin(self, slug: str, item: QueueItem) -> None:
        """A delivered prompt was confirmed by the runtime: remember where it came from."""
        with self._lock:
            pending = self._origins.setdefault(slug, [])
            pending.append((normalized(item.source.get("pasted", item.text)), item))
            del pending[:-20]

    async def settled(self) -> None:
        if self.pending is not None:
            await self.pending()

    def thread_of(self, slug: str) -> str | None:
        return self._thread.get(slug)

    def resume(self, slug: str, at: Place) -> None:
        """A read pass starts at ``at``: take the thread in effect there from durable state."""
        if self._book is not None:
            self._thread[slug] = self._book.thread_at(slug, at)

    def _pop(self, slug: str, text: str) -> tuple[int, Kind, dict[str, Any]] | None:
        wanted = normalized(text)
        with self._lock:
            pending = self._origins.get(slug, [])
            for i, (pasted, item) in enumerate(pending):
                if echoes(pasted, wanted):
                    del pending[i]
                    return item.id, item.kind, item.source
        if self._book is not None:
            for found in self._book.unclaimed(slug):
                if echoes(normalized(found.source.get("pasted", found.text)), wanted):
                    return found.id, Kind(found.kind), found.source
        return None

    def route(self, slug: str, event: Event, at: Place | None = None) -> Route:
        pinned = self._pinned.get(slug)
        if event.kind is not EventKind.USER_PROMPT:
            return Route(thread=self._thread.get(slug) or pinned)
        if self._book is not None:
            saved = self._book.get(slug, event.id)
            if saved is not None:  # read before: the same route, whatever memory says
                self._thread[slug] = saved.thread
                return Route(thread=pinned, skip=saved.skip, header=saved.header)
        origin = self._pop(slug, event.text)
        thread, route = self._decide(origin, pinned)
        self._thread[slug] = thread
        if self._book is not None and at is not None:
            saved = SavedRoute(thread, route.skip, route.header)
            self._book.save(slug, event.id, at, saved, origin[0] if origin else None)
        return route

    @staticmethod
    def _decide(
        origin: tuple[int, Kind, dict[str, Any]] | None, pinned: str | None
    ) -> tuple[str | None, Route]:
        """(the turn's thread, the prompt's own route) for a prompt from ``origin``; a pinned
        agent (a PR reviewer) keeps every turn nobody started from Slack in its thread."""
        if origin is None:
            return pinned, Route(thread=pinned, header=TYPED)
        _, kind, source = origin
        slack_ts = source.get("thread_ts") or source.get("ts")
        if source.get("via") == "slack" and isinstance(slack_ts, str):
            return slack_ts, Route(skip=True)  # echo suppression: the person sees their message
        if source.get("via") == "command":
            return pinned, Route(thread=pinned, header=":speech_balloon: *Sent with /agent send*")
        return pinned, Route(thread=pinned, header=HEADERS.get(kind))


async def route_event(router: Router | None, slug: str, event: Event, at: Place) -> Route:
    """``router.route`` from the event loop: a prompt's route is looked up (and saved) in the
    store, so in a worker thread, once the origins on their way are in."""
    if router is None:
        return Route()
    if event.kind is EventKind.USER_PROMPT:
        await router.settled()
        return await asyncio.to_thread(router.route, slug, event, at)
    return router.route(slug, event, at)
