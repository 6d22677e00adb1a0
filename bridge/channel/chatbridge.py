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
from functools import partial
from pathlib import Path
from typing import Any

from bridge.aio import TaskSet
from bridge.channel.access_note import AccessNotes
from bridge.channel.alerts import PREFIX as STUCK_PREFIX
from bridge.channel.alerts import Alerts
from bridge.channel.commands import Commands
from bridge.channel.inbound import Inbound
from bridge.channel.turnstatus import TurnStatus
from bridge.chat.protocol import Action, ChatBackend, NotKept
from bridge.config.model import Config, channel_for
from bridge.fleet.reconcile import Reconciler
from bridge.lifecycle.core import Lifecycle
from bridge.store.queue import QueueItem
from bridge.store.retry import retrying

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
        self.commands = Commands(
            config,
            lifecycle.queue,
            lifecycle.tracker,
            reconciler,
            wake,
            channel_ids=lambda: dict(backend.channels),
        )
        self.notes = AccessNotes(lifecycle.queue.store, backend)
        self.status: TurnStatus | None = None
        if backend.live_status:
            self.status = TurnStatus(backend, self._channel, lifecycle.router.thread_of)
            self.status.interrupt_of = lambda slug: lifecycle.tracker.get(slug).interruption
            lifecycle.tracker.interruption_listeners.append(self.status.refresh)
            lifecycle.tracker.listeners.append(self.status.changed)
        lifecycle.on_confirmed.append(self._spawn_confirmed)
        lifecycle.deliverer.on_delivered.append(self._delivered)
        lifecycle.deliverer.on_failed.append(self._spawn_failed)
        self._tasks = TaskSet()
        self._resolved: set[str] = set()
        """Channels resolution was asked for (at start, or after a reload that added them)."""
        self.alerts = Alerts(backend, lifecycle, reconciler, self.inbound, self._channel)
        backend.on_action = self._on_action

    def _channel(self, slug: str) -> str:
        return self.config.channel_of(slug)

    def update_config(self, config: Config) -> None:
        """Take a reloaded config (on the event loop). Channels of agents added by the edit or
        by ``spawn`` are resolved and joined in the background, so the reload itself never
        waits on Slack and steering them works as soon as their channel is known."""
        self.config = config
        self.inbound.update_config(config)
        self.commands.update_config(config)
        new = sorted(self._wanted(config) - self._resolved)
        self._resolved.update(new)
        self._spawn(self._after_reload(config, new))

    async def _after_reload(self, config: Config, new: list[str]) -> None:
        """New channels first (the access note needs them), then the closed-access notes."""
        if new:
            await self._resolve(new)
        await self._guard(self.notes.announce(config))

    @staticmethod
    def _wanted(config: Config) -> set[str]:
        return {channel_for(a) for a in config.enabled_agents()}

    async def _resolve(self, channels: list[str]) -> None:
        try:
            problems = await self.backend.resolve_channels(channels)
        except Exception as err:  # retried at the next reload that names the channel
            self._resolved.difference_update(channels)
            log.error("chat: could not resolve %s: %s", ", ".join(channels), err)
            return
        for problem in problems:
            log.error("%s", problem)
        log.info("chat: channels ready for %s", ", ".join(channels))

    async def start(self) -> None:
        """Resolve channels (one clear line per problem) and take slash commands."""
        wanted = sorted(self._wanted(self.config))
        self._resolved.update(wanted)
        for problem in await self.backend.resolve_channels(wanted):
            log.error("%s", problem)
        self.backend.command_handler = self.commands.run
        await self._guard(self.notes.announce(self.config, at_start=True))

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
                receipt = incoming.receipt
                try:
                    if receipt is None or not receipt.held:  # routed: retried by the drain
                        await self.inbound.handle(incoming)
                    else:  # the database away: held, unacked, until it is back
                        await retrying(partial(self.inbound.handle, incoming), "taking a message")
                except asyncio.CancelledError:
                    if receipt is not None:  # stopping mid-message: let Slack send it again
                        receipt.refuse(NotKept("the runner is stopping"))
                    raise
                except Exception as err:
                    log.exception("chat: could not take a message from %s", incoming.channel)
                    if receipt is not None:  # not acked: Slack redelivers it
                        receipt.refuse(NotKept(f"not queued: {err}"))

        # Steering must never stop silently while the runner looks healthy. A database outage
        # holds the message (unacked: Slack's redeliveries are deduplicated) and retries it
        # with backoff until the database is back, however long that takes, so nothing sent
        # meanwhile is lost; another failure refuses it (Slack sends it again). Should the
        # stream itself end or break, so does this task, and the runner with it (the daemon
        # stops on a core task's end; systemd starts it again).
        task = asyncio.create_task(consume(), name="chat-consume")
        stopping = asyncio.create_task(stop.wait(), name="chat-stop")
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                error = task.exception()
                if error is not None:
                    raise error
                raise RuntimeError("the chat backend's stream of messages ended")
        finally:
            for waiting in (task, stopping):
                waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if self.status is not None:
                await self.status.close()
