"""The chat side of the runner, wired: inbound steering, slash commands, reactions, live status.

Kept out of the daemon so the daemon only starts things; the rules live in
:mod:`bridge.channel.inbound` (who may steer, what text is pasted),
:mod:`bridge.channel.commands` (``/agent``) and
:mod:`bridge.channel.turnstatus` (the per-turn status line).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from bridge.aio import TaskSet
from bridge.channel.alerts import PREFIX as STUCK_PREFIX
from bridge.channel.alerts import Alerts
from bridge.channel.commands import Commands
from bridge.channel.inbound import Inbound
from bridge.channel.turnstatus import TurnStatus
from bridge.chat.protocol import Action, ChatBackend
from bridge.config.model import Config, channel_for
from bridge.fleet.reconcile import Reconciler
from bridge.lifecycle.core import Lifecycle
from bridge.store.queue import QueueItem

log = logging.getLogger("agentbridge.chat")


class ChatBridge:
    def __init__(
        self,
        config: Config,
        backend: ChatBackend,
        lifecycle: Lifecycle,
        reconciler: Reconciler,
        inbox: Path,
    ) -> None:
        self.config = config
        self.backend = backend
        self.lifecycle = lifecycle
        wake = lifecycle.deliverer.wake.set
        self.inbound = Inbound(
            config,
            lifecycle.queue,
            backend,
            inbox,
            channel_ids=lambda: dict(backend.channels),
            wake=wake,
        )
        self.commands = Commands(config, lifecycle.queue, lifecycle.tracker, reconciler, wake)
        self.status: TurnStatus | None = None
        if backend.live_status:
            self.status = TurnStatus(backend, self._channel, lifecycle.router.thread_of)
            lifecycle.tracker.listeners.append(self.status.changed)
        lifecycle.on_confirmed.append(self._spawn_confirmed)
        lifecycle.deliverer.on_delivered.append(self._delivered)
        lifecycle.deliverer.on_failed.append(self._spawn_failed)
        self._tasks = TaskSet()
        self.alerts = Alerts(backend, lifecycle, reconciler, self.inbound, self._channel)
        backend.on_action = self._on_action

    def _channel(self, slug: str) -> str:
        return self.config.channel_of(slug)

    def update_config(self, config: Config) -> None:
        self.config = config
        self.inbound.update_config(config)
        self.commands.update_config(config)

    async def start(self) -> None:
        """Resolve channels (one clear line per problem) and take slash commands."""
        wanted = sorted({channel_for(a) for a in self.config.enabled_agents()})
        for problem in await self.backend.resolve_channels(wanted):
            log.error("%s", problem)
        self.backend.command_handler = self.commands.run
        if not self.config.allowed_users and not any(a.allowed_users for a in self.config.agents):
            log.warning(
                "chat: no allowed_users configured: anyone in an agent's channel can steer it"
            )

    async def _on_action(self, action: Action) -> str | None:
        """Buttons, by their feature's action-id prefix."""
        if action.action_id.startswith(STUCK_PREFIX):
            return await self.alerts.on_action(action)
        return None

    def _delivered(self, item: QueueItem, _outcome: str) -> None:
        if self.status is not None and item.source.get("via") == "slack":
            self.status.hint(item.slug, str(item.source.get("thread_ts") or ""))

    def _spawn(self, coro: Any) -> None:
        self._tasks.spawn(coro)

    def _spawn_confirmed(self, item: QueueItem) -> None:
        self._spawn(self._guard(self.inbound.confirmed(item)))

    def _spawn_failed(self, item: QueueItem, reason: str) -> None:
        self._spawn(self._guard(self.inbound.failed(item, reason)))

    @staticmethod
    async def _guard(coro: Any) -> None:
        try:
            await coro
        except Exception as err:  # a reaction is never worth a crash
            log.warning("chat: %s", err)

    async def run(self, stop: asyncio.Event) -> None:
        async def consume() -> None:
            async for incoming in self.backend.receive():
                try:
                    await self.inbound.handle(incoming)
                except Exception:
                    log.exception("chat: could not take a message from %s", incoming.channel)

        task = asyncio.create_task(consume())
        try:
            await stop.wait()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if self.status is not None:
                await self.status.close()
