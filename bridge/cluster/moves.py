"""This runner's side of ``agentbridge move``: the placement authority, handover and takeover.

With a shared store the ``placements`` row is the authority on where an agent runs: the
config's ``host:`` is only its initial placement, and once a move has been recorded
(``moved``) the row wins (:mod:`bridge.store.moves`). Every runner polls the rows every
:data:`POLL_S` seconds (and at once when the fence refuses a write) and applies a change to its
local fleet the way a config reload does: :meth:`Moves.effective` rewrites each moved agent's
``host`` to the row's, and the daemon's ``reload`` hands that config to the reconciler, the
mirrors, the lifecycle and the inbound router, so routing follows the effective placement too.

A move, seen from the old host (the row names it and has ``moving_to``): no more pastes for the
agent (the queue's scope), the prompts already pasted echoed back by the CLI (at most
:data:`DRAIN_S`), its CLI stopped (its row keeps its session id for the new host), a
final settle and pump of its mirror (everything the CLI wrote is mirrored here, once), then the
commit ``host = new, epoch + 1``. Should the final pump fail (chat or store away), the commit
waits for the next poll. The new host takes the agent once the row names it; should the old
host be silent for ``move_takeover_after_seconds``, the new host commits the move itself,
bumping the epoch, and the old host's writes for the agent are refused from then on
(:mod:`bridge.store.fence`): it drops the agent when it sees the row or when a write is refused.

The agent's work dir and CLI session on the new host are the operator's to provide (the same
path, a shared disk or a copy). The mirror resumes from the stored offsets when the transcript
path is the same there; otherwise it follows the new host's file from its start of session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from bridge.aio import wait_event
from bridge.cluster.placement import local_fleet
from bridge.config.model import Config
from bridge.store.db import Store
from bridge.store.fence import Fence
from bridge.store.hosts import HostBook
from bridge.store.moves import MoveBook, Placement
from bridge.store.retry import is_store_error

log = logging.getLogger("agentbridge.cluster")

POLL_S = 2.0
"""How often a runner reads the placements (a move takes about this long to be noticed)."""

DRAIN_S = 30.0
"""How long the old host waits for the prompts it pasted to be echoed back by the CLI (taken
to the model) before it stops the CLI anyway (one still unconfirmed then is logged)."""


class Stopper(Protocol):
    def hand_over(self, slug: str, config: Config, *, record: bool = True) -> None: ...


class FinalPump(Protocol):
    async def hand_over(self, slug: str) -> None: ...


class Scoped(Protocol):
    scope: frozenset[str] | None


class Moves:
    def __init__(self, store: Store, host: str) -> None:
        self.store = store
        self.host = host
        self.book = MoveBook(store)
        self.hosts = HostBook(store)
        self.rows: dict[str, Placement] = {}
        self.raw: Config | None = None
        self.fence: Fence | None = None
        self._poke = asyncio.Event()
        self._applied: dict[str, str | None] = {}
        self._reload: Callable[[Config], None] | None = None
        self._parts: tuple[Stopper, FinalPump, Scoped] | None = None
        self._draining: dict[str, float] = {}

    async def start(self, config: Config) -> Config:
        """Place the config's agents, read the placements, arm the fence: the fleet as it is."""
        shared = self.store.shared
        mine = [a.slug for a in local_fleet(config, self.host, shared=shared).agents]
        await asyncio.to_thread(self.hosts.place, self.host, mine)
        if not shared:
            return config
        loop = asyncio.get_running_loop()

        def lost(_slug: str) -> None:  # a refused write: look at the placements now
            loop.call_soon_threadsafe(self._poke.set)

        self.fence = Fence(self.host, lost)
        self.store.fence = self.fence
        await self._read()
        fleet = self.effective(config)
        self._applied = _hosts(fleet)
        return fleet

    def attach(
        self, reload: Callable[[Config], None], stopper: Stopper, pump: FinalPump, queue: Scoped
    ) -> None:
        self._reload = reload
        self._parts = (stopper, pump, queue)

    def effective(self, config: Config, leaving: dict[str, str] | None = None) -> Config:
        """``config`` with each moved agent's ``host`` the placement row's (and each agent of
        ``leaving`` already on its new host)."""
        self.raw = config
        agents = []
        for agent in config.agents:
            row = self.rows.get(agent.slug)
            host = row.host if row is not None and row.moved else agent.host
            host = (leaving or {}).get(agent.slug, host)
            agents.append(agent if host == agent.host else agent.model_copy(update={"host": host}))
        if all(a is b for a, b in zip(agents, config.agents, strict=True)):
            return config
        return config.model_copy(update={"agents": agents})

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.fence is not None:
                try:
                    await self.poll()
                except Exception as err:
                    if not is_store_error(err):
                        raise
                    log.warning(
                        "cluster: reading placements failed (%s); next in %.0f s", err, POLL_S
                    )
            await wait_event(self._poke, POLL_S)
            self._poke.clear()

    async def poll(self) -> None:
        """One look at the placements: hand over, take over, apply what changed."""
        raw = self.raw
        if raw is None:
            return
        await self._read()
        acted = False
        for row in list(self.rows.values()):
            if raw.agent(row.slug) is None or row.moving_to is None:
                continue
            if row.host == self.host and row.moving_to != self.host:
                acted |= await self._hand_over(raw, row)
            elif row.moving_to == self.host and row.host != self.host:
                acted |= await self._take_over(raw, row)
        if acted:
            await self._read()
        fleet = self.effective(raw)
        if _hosts(fleet) == self._applied or self._reload is None or self._parts is None:
            return
        was = {s for s, h in self._applied.items() if h == self.host}
        self._applied = _hosts(fleet)
        local = local_fleet(fleet, self.host, shared=True)
        for slug in sorted(was - {a.slug for a in local.agents}):
            # Taken while this host was away (or handed over just now): its CLI stops here,
            # and no row is written (the reconciler's "removed" path would forget the agent).
            log.warning("%s: placed on %s now; dropping it here", slug, self._applied.get(slug))
            await asyncio.to_thread(self._parts[0].hand_over, slug, local, record=False)
        log.info("cluster: placements changed; applying them")
        self._reload(fleet)

    async def _read(self) -> None:
        self.rows = await asyncio.to_thread(self.book.placements)
        if self.fence is not None:
            self.fence.hold({s: r.epoch for s, r in self.rows.items() if r.host == self.host})

    async def _hand_over(self, raw: Config, row: Placement) -> bool:
        assert row.moving_to is not None and self._parts is not None
        stopper, pump, queue = self._parts
        slug = row.slug
        local = local_fleet(self.effective(raw, {slug: row.moving_to}), self.host, shared=True)
        queue.scope = frozenset(a.slug for a in local.agents)  # nothing more is pasted here
        since = self._draining.setdefault(slug, time.monotonic())
        waiting = await asyncio.to_thread(self.book.in_flight, slug)
        if waiting and time.monotonic() - since < DRAIN_S:
            return False  # the next poll looks again
        if waiting:
            log.warning("%s: %d pasted prompts not echoed back; stopping it anyway", slug, waiting)
        self._draining.pop(slug, None)
        await asyncio.to_thread(stopper.hand_over, slug, local)
        try:
            await pump.hand_over(slug)
        except Exception as err:
            log.warning("%s: final mirror pump failed (%s); the move waits for it", slug, err)
            return False
        if not await asyncio.to_thread(self.book.hand_over, slug, self.host, row.epoch):
            log.warning("%s: placement changed during the handover; re-reading it", slug)
            return True
        log.info("%s: handed over to %s (epoch %d)", slug, row.moving_to, row.epoch + 1)
        return True

    async def _take_over(self, raw: Config, row: Placement) -> bool:
        """The old host's handover, or, when it is silent for long enough, the takeover."""
        seen = {h.host: h for h in await asyncio.to_thread(self.hosts.hosts)}
        old = seen.get(row.host)
        silent = old.age() if old is not None else float("inf")
        if silent < raw.move_takeover_after_seconds:
            return False
        if not await asyncio.to_thread(self.book.take_over, row.slug, self.host, row.epoch):
            return True
        log.warning(
            "%s: host %s silent for %.0f s; taken over here (epoch %d)",
            row.slug,
            row.host,
            silent,
            row.epoch + 1,
        )
        return True


def _hosts(config: Config) -> dict[str, str | None]:
    return {a.slug: a.host for a in config.agents}
