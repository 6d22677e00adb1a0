"""A chat backend that forwards the whole :class:`~bridge.chat.protocol.ChatBackend` protocol
to another one, method by method.

For wrappers that change one part (the multi-host router decides which runner takes an inbound
event) and leave the rest alone: subclass, override what changes. Explicit forwarding, not
``__getattr__``, so the type checker holds the wrapper to the protocol as declared.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from bridge.chat.protocol import Attachment, ChatBackend, Incoming, Outgoing, Posted


class DelegatingBackend:
    """Forwards every protocol member to ``inner`` (owned by the same event loop)."""

    def __init__(self, inner: ChatBackend) -> None:
        self._inner = inner
        self.name = inner.name
        self.coalesce = inner.coalesce
        self.live_status = inner.live_status

    @property
    def channels(self) -> Mapping[str, str]:
        return self._inner.channels

    async def start(self) -> None:
        await self._inner.start()

    async def close(self) -> None:
        await self._inner.close()

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
