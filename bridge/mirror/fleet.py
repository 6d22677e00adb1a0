"""The fleet's mirrors, woken by file-system events rather than a fast poll.

One watchfiles watcher (inotify underneath) covers every agent's transcript roots; a change to a
followed file wakes that agent's mirror, a new ``.jsonl`` under an agent's roots makes it look
for a (rotated) transcript. Each agent has its own worker task, so a slow chat backend for one
agent never delays another. A slow safety rescan (every few seconds) covers anything a watcher
can miss: a directory created before the watch was set up, a network file system, a full inotify
queue.

Before a worker mirrors anything it settles its agent's unfinished posts (looks them up, so none
is posted twice). A settle that fails (a 5xx, Slack unreachable) is retried with exponential
backoff by that agent's worker alone: the other agents keep mirroring, and the runner does not
exit and restart-loop over one outage. Everything here is owned by the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import anyio._backends._asyncio  # noqa: F401  (see below)
import watchfiles
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    wait_exponential,
)

from bridge.aio import wait_event
from bridge.chat.protocol import ChatBackend
from bridge.config.model import AgentConfig, Config, channel_for
from bridge.fleet.launch import launch_context
from bridge.mirror.agent import AgentMirror, Listener
from bridge.mirror.routing import Router
from bridge.store.db import Store
from bridge.store.fence import Fenced
from bridge.store.ledger import Ledger
from runtimes import LaunchContext, get_runtime

log = logging.getLogger("agentbridge.mirror")

# ``watchfiles.awatch`` loads anyio's asyncio backend on its first call: a module of thousands of
# lines imported on the event loop (a stall of 100 ms and more on a busy box). The import above
# pays for it with this module, before the loop runs.

#: First and longest pause between attempts to settle an agent's unfinished posts.
SETTLE_BACKOFF_S = 1.0
SETTLE_BACKOFF_MAX_S = 60.0


class Mirrors:
    def __init__(
        self,
        store: Store,
        backend: ChatBackend,
        *,
        environ: Mapping[str, str] | None = None,
        rescan_seconds: float = 5.0,
        listeners: list[Listener] | None = None,
        router: Router | None = None,
    ) -> None:
        self.store = store
        self.ledger = Ledger(store)
        self.backend = backend
        self.environ = dict(os.environ if environ is None else environ)
        self.rescan_seconds = rescan_seconds
        self.listeners = listeners if listeners is not None else []
        self.router = router
        self.mirrors: dict[str, AgentMirror] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._refresh: set[str] = set()
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._leaving: set[str] = set()
        self._roots_changed = asyncio.Event()
        self._config: Config | None = None
        self._realpaths: dict[str, str] = {}

    # -- membership -------------------------------------------------------------------------

    def _mirror(self, agent: AgentConfig) -> AgentMirror:
        slug = agent.slug

        def context() -> LaunchContext:
            assert self._config is not None
            current = self._config.agent(slug) or agent
            row = self.store.agent(slug)
            return launch_context(
                self._config,
                current,
                self.environ,
                known_session_id=row.runtime_session_id if row else None,
            )

        def launched_at() -> float | None:
            launch = self.store.current_launch(slug)
            return launch.started_at if launch else None

        def known_session() -> str | None:
            row = self.store.agent(slug)
            return row.runtime_session_id if row else None

        return AgentMirror(
            slug,
            get_runtime(agent.runtime),
            context,
            launched_at,
            known_session,
            self.ledger,
            self.backend,
            channel_for(agent),
            show_thinking=agent.thinking,
            listeners=self.listeners,
            router=self.router,
        )

    def sync(self, config: Config) -> None:
        """Add mirrors for new agents and retire those of removed ones."""
        self._config = config
        wanted = {a.slug: a for a in config.agents if a.enabled}
        for slug in list(self.mirrors):
            if slug not in wanted:
                self.mirrors.pop(slug)
                self._wake.pop(slug, None)
                task = self._workers.pop(slug, None)
                if task:
                    task.cancel()
        for slug, agent in wanted.items():
            mirror = self.mirrors.get(slug)
            if mirror is None:
                self.mirrors[slug] = self._mirror(agent)
                self._wake[slug] = asyncio.Event()
                self._refresh.add(slug)
            else:
                mirror.channel = channel_for(agent)
                mirror.show_thinking = agent.thinking
        for slug in wanted:
            self.wake(slug, refresh=True)
        self._roots_changed.set()

    async def hand_over(self, slug: str) -> None:
        """A move: stop ``slug``'s worker, settle and pump once more (what the CLI wrote is
        mirrored here, once), then drop the mirror. Raises if the final pump fails (the move
        then waits for the next try)."""
        self._leaving.add(slug)  # the run loop starts no worker for it meanwhile
        task = self._workers.pop(slug, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        mirror = self.mirrors.get(slug)
        if mirror is None:
            return
        try:
            await mirror.settle()
            await mirror.refresh()
            await mirror.pump()
        except BaseException:
            self.wake(slug)  # the worker comes back at the next run pass
            raise
        else:
            self.mirrors.pop(slug, None)
            self._wake.pop(slug, None)
        finally:
            self._leaving.discard(slug)

    def wake(self, slug: str, *, refresh: bool = False) -> None:
        if refresh:
            self._refresh.add(slug)
        event = self._wake.get(slug)
        if event is not None:
            event.set()

    # -- running ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [
            asyncio.create_task(self._watch(stop), name="mirror-watch"),
            asyncio.create_task(self._rescan(stop), name="mirror-rescan"),
        ]
        try:
            while not stop.is_set():
                for slug in self.mirrors:
                    if slug in self._leaving:
                        continue
                    task = self._workers.get(slug)
                    if task is None or task.done():
                        self._workers[slug] = asyncio.create_task(self._worker(slug, stop))
                await wait_event(stop, 0.5)
        finally:
            for task in [*tasks, *self._workers.values()]:
                task.cancel()
            for task in [*tasks, *self._workers.values()]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _settle(self, slug: str, mirror: AgentMirror, stop: asyncio.Event) -> bool:
        """Settle ``mirror``'s unfinished posts, retrying with backoff; False if stopped first."""

        async def pause(seconds: float) -> None:
            await wait_event(stop, seconds)  # a stop ends the wait at once

        retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=SETTLE_BACKOFF_S, max=SETTLE_BACKOFF_MAX_S),
            retry=retry_if_exception_type(Exception),
            stop=lambda _state: stop.is_set(),
            sleep=pause,
            before_sleep=lambda state: log.warning(
                "%s: settling unfinished posts failed (%s); retry %d in %.0f s, "
                "the other agents keep mirroring",
                slug,
                state.outcome.exception() if state.outcome else "?",
                state.attempt_number,
                state.upcoming_sleep,
            ),
            reraise=False,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await mirror.settle()
        except RetryError:
            return False  # stopped while the outage lasted
        return not stop.is_set()

    async def _worker(self, slug: str, stop: asyncio.Event) -> None:
        wake = self._wake[slug]
        mirror = self.mirrors.get(slug)
        if mirror is None or not await self._settle(slug, mirror, stop):
            return
        while not stop.is_set():
            await wake.wait()
            wake.clear()
            mirror = self.mirrors.get(slug)
            if mirror is None:
                return
            try:
                if slug in self._refresh or mirror.current is None:
                    self._refresh.discard(slug)
                    await mirror.refresh()
                await mirror.pump()
            except Fenced as err:  # moved away: no retry, the runner drops the agent
                log.warning("%s", err)
                return
            except Exception:  # a chat outage must not kill the agent's mirror for good
                log.exception("%s: mirroring failed; will retry", slug)
                await asyncio.sleep(2)
                wake.set()

    def _roots(self) -> dict[Path, list[str]]:
        roots: dict[Path, list[str]] = {}
        for slug, mirror in self.mirrors.items():
            for root in mirror.roots():
                root.mkdir(parents=True, exist_ok=True)
                roots.setdefault(root.resolve(), []).append(slug)
        return roots

    async def _watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._roots_changed.clear()
            roots = await asyncio.to_thread(self._roots)
            if not roots:
                await _first(stop, self._roots_changed)
                continue
            local_stop = asyncio.Event()
            relay = asyncio.create_task(_set_when(local_stop, stop, self._roots_changed))
            try:
                async for changes in watchfiles.awatch(
                    *roots,
                    stop_event=local_stop,
                    debounce=50,
                    step=20,
                    recursive=True,
                    watch_filter=lambda _c, p: p.endswith(".jsonl"),
                    rust_timeout=0,
                ):
                    self._dispatch(changes, roots)
            finally:
                relay.cancel()

    def _dispatch(
        self, changes: set[tuple[watchfiles.Change, str]], roots: dict[Path, list[str]]
    ) -> None:
        """Wake the agent whose followed file changed; on a new file under an agent's roots
        (or for an agent with no file yet), let it look for a rotated transcript."""
        followed: dict[str, str] = {}
        for slug, mirror in self.mirrors.items():
            if mirror.current is not None:
                followed[self._real(mirror.current.path)] = slug
        prefixes = [(str(root) + os.sep, slugs) for root, slugs in roots.items()]
        for change, changed in changes:
            owner = followed.get(changed)
            if owner is not None:
                self.wake(owner)
                continue
            for prefix, slugs in prefixes:
                if not changed.startswith(prefix):
                    continue
                for other in slugs:
                    idle = self.mirrors.get(other)
                    if change is watchfiles.Change.added or (idle and idle.current is None):
                        self.wake(other, refresh=True)

    def _real(self, path: str) -> str:
        real = self._realpaths.get(path)
        if real is None:
            real = self._realpaths[path] = os.path.realpath(path)
        return real

    async def _rescan(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await wait_event(stop, self.rescan_seconds)
            for slug in self.mirrors:
                self.wake(slug, refresh=True)


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def _set_when(target: asyncio.Event, *sources: asyncio.Event) -> None:
    await _first(*sources)
    target.set()
