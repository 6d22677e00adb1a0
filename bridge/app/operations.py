"""The runner's operator side, wired: systemd's readiness and watchdog pings, and the metrics
endpoint (both in :mod:`bridge.ops`), fed from the lifecycle, the mirrors, the chat backend and
the store; and the store's retention (:mod:`bridge.store.retention`).

One loop task copies what the loop owns into an immutable :class:`~bridge.ops.metrics.LoopFigures`
every :data:`COPY_S` (and measures the loop's lateness while at it); the scrape thread reads
that copy and the store, never a loop-owned object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence

from bridge.app import status
from bridge.chat.protocol import ChatBackend
from bridge.config.model import Config
from bridge.fleet.tmux import TmuxServer
from bridge.lifecycle.activity import IN_TURN, Activity, ActivityTracker
from bridge.mirror.fleet import Mirrors
from bridge.ops.metrics import AgentNow, FleetCollector, LoopFigures, MetricsServer, StoredAgent
from bridge.ops.systemd import Notifier, watchdog
from bridge.store.db import Store
from bridge.store.retention import FIRST_S, keep_bounded

log = logging.getLogger("agentbridge")

COPY_S = 1.0
"""How often the loop's figures are copied for the metrics endpoint."""


class Operations:
    """Owned by the runner's loop; :attr:`config` is the local fleet (set again on reload)."""

    def __init__(
        self,
        config: Config,
        store: Store,
        tmux: TmuxServer,
        tracker: ActivityTracker,
        mirrors: Mirrors,
        backend: ChatBackend,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.tmux = tmux
        self.tracker = tracker
        self.mirrors = mirrors
        self.backend = backend
        self.notifier = Notifier(environ)
        self.collector = FleetCollector(self._stored, self._probe)
        self.server: MetricsServer | None = None

    def ready(self) -> None:
        """The runner has started: systemd's ``Type=notify`` start is complete."""
        self.notifier.send("READY=1")

    async def run(self, stop: asyncio.Event, core: Sequence[asyncio.Task[None]]) -> None:
        """Until ``stop``: the watchdog pings (while every task of ``core`` lives), retention,
        and, when configured, the metrics endpoint."""
        address = self.config.metrics.address()
        if address is not None:
            try:
                self.server = await asyncio.to_thread(MetricsServer, self.collector, *address)
            except OSError as err:  # the port taken: the runner still runs, and says why
                log.error("metrics: cannot listen on %s:%d (%s)", *address, err)
        healthy = lambda: not any(task.done() for task in core)  # noqa: E731
        try:
            await asyncio.gather(
                watchdog(self.notifier, healthy, stop),
                self._copy(stop),
                keep_bounded(
                    self.store,
                    lambda: self.config.retention.model_dump(),
                    stop,
                    first=min(FIRST_S, self.config.retention.every_minutes * 60),
                ),
                stop.wait(),
            )
        finally:
            self.notifier.send("STOPPING=1")
            if self.server is not None:
                await asyncio.to_thread(self.server.close)

    async def _copy(self, stop: asyncio.Event) -> None:
        if self.server is None:
            return
        while not stop.is_set():
            started = time.monotonic()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), COPY_S)
            late = max(time.monotonic() - started - COPY_S, 0.0)
            chat = await self.backend.figures()
            self.collector.now = LoopFigures(
                states=tuple(a.value for a in Activity),
                agents=tuple(self._now(a.slug) for a in self.config.agents),
                loop_lag_s=late,
                rate_limited=dict(chat.rate_limited),
                chat_connected=chat.connected,
            )

    def _now(self, slug: str) -> AgentNow:
        activity = self.tracker.get(slug)
        mirror = self.mirrors.mirrors.get(slug)
        current = mirror.current if mirror is not None else None
        return AgentNow(
            slug,
            activity.state.value,
            activity.since,
            activity.state in IN_TURN,
            mirror.failures if mirror is not None else 0,
            current.path if current is not None else None,
        )

    # -- the scrape thread -------------------------------------------------------------------

    def _probe(self) -> None:
        self.store.query("SELECT 1")

    def _stored(self) -> list[StoredAgent]:
        return [
            StoredAgent(
                s.slug, s.alive, s.queued, s.mirrored, s.skipped_posts, s.restarts, s.limited_until
            )
            for s in status.collect(self.config, self.store, self.tmux)
        ]
