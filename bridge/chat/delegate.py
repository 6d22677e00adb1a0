"""A chat backend that forwards the whole :class:`~bridge.chat.protocol.ChatBackend` protocol
to another one, method by method.

For wrappers that change one part (the multi-host router decides which runner takes an inbound
event) and leave the rest alone: subclass, override what changes. Explicit forwarding, not
``__getattr__``, so the type checker holds the wrapper to the protocol as declared.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from bridge.chat.protocol import (
    Action,
    ActionHandler,
    Attachment,
    ChatBackend,
    ChatFigures,
    CommandHandler,
    Incoming,
    Outgoing,
    Posted,
)


class DelegatingBackend:
    """Forwards every protocol member to ``inner`` (owned by the same event loop)."""

    def __init__(self, inner: ChatBackend) -> None:
        self._inner = inner
        self.name = inner.name
        self.coalesce = inner.coalesce
        self.live_status = inner.live_status
        self._command: CommandHandler | None = None
        self._action: ActionHandler | None = None

    # The runner's handlers for ``/agent`` and clicks are kept here, and the inner backend is
    # handed this wrapper's :meth:`_handle_command` / :meth:`_handle_action` instead: a
    # subclass overrides those to change what a command or click goes through (redaction of
    # the reply, routing to another host) and calls ``self._command`` / ``self._action``.

    @property
    def command_handler(self) -> CommandHandler | None:
        return self._command

    @command_handler.setter
    def command_handler(self, handler: CommandHandler | None) -> None:
        self._command = handler
        self._inner.command_handler = self._handle_command if handler else None

    @property
    def on_action(self) -> ActionHandler | None:
        return self._action

    @on_action.setter
    def on_action(self, handler: ActionHandler | None) -> None:
        self._action = handler
        self._inner.on_action = self._handle_action if handler else None

    def share_among(self, hosts: int) -> None:
        """``hosts`` runners share the chat workspace: forwarded to a backend that budgets it
        (Slack's rate limits); an optional capability, so not part of the protocol."""
        share = getattr(self._inner, "share_among", None)
        if share is not None:
            share(hosts)

    async def _handle_command(self, user: str, channel: str, text: str) -> str:
        handler = self._command
        if handler is None:
            return "agentbridge is starting; try again in a moment."
        return await handler(user, channel, text)

    async def _handle_action(self, action: Action) -> str | None:
        handler = self._action
        return await handler(action) if handler is not None else None

    @property
    def channels(self) -> Mapping[str, str]:
        return self._inner.channels

    async def start(self) -> None:
        await self._inner.start()

    async def close(self) -> None:
        await self._inner.close()

    async def figures(self) -> ChatFigures:
        return await self._inner.figures()

    async def resolve_channels(self, wanted: Sequence[str]) -> list[str]:
        return await self._inner.resolve_channels(wanted)

    async def post(self, msg: Outgoing) -> Posted:
        return await self._inner.post(msg)

    async def update(
        self, channel: str, ref: str, text: str, blocks: Sequence[Mapping[str, Any]] | None = None
    ) -> None:
        await self._inner.update(channel, ref, text, blocks)

    async def open_view(self, trigger_id: str, view: Mapping[str, Any]) -> None:
        await self._inner.open_view(trigger_id, view)

    async def reserve(self, channel: str) -> float:
        return await self._inner.reserve(channel)

    async def delete(self, channel: str, ref: str) -> bool:
        return await self._inner.delete(channel, ref)

    async def react(self, channel: str, ref: str, emoji: str) -> None:
        await self._inner.react(channel, ref, emoji)

    async def notify_user(self, channel: str, user: str, text: str) -> None:
        await self._inner.notify_user(channel, user, text)

    async def find_posted(
        self, channel: str, event_ids: Sequence[str], thread: str | None = None
    ) -> dict[str, str]:
        return await self._inner.find_posted(channel, event_ids, thread)

    def attachment(self, file_id: str, name: str, size: int, source: str) -> Attachment:
        return self._inner.attachment(file_id, name, size, source)

    def receive(self) -> AsyncIterator[Incoming]:
        return self._inner.receive()
