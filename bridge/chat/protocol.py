"""The chat side of the bridge, as one small protocol every backend implements.

The mirror speaks only this protocol, so Slack and the console are interchangeable. Every post
carries the ledger's event id: a backend that can look posts up by it (Slack message metadata,
the console's outbox file) lets the runner settle a post whose answer was lost in a crash,
instead of guessing between a loss and a duplicate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from bridge.errors import AgentbridgeError


@dataclass(frozen=True, slots=True)
class Outgoing:
    slug: str
    channel: str
    text: str
    event_id: str
    thread: str | None = None
    as_file: bool = False
    filename: str | None = None
    event_ids: tuple[str, ...] = ()
    """Every ledger event this message carries (defaults to ``(event_id,)``)."""

    @property
    def ids(self) -> tuple[str, ...]:
        return self.event_ids or (self.event_id,)


class Undeliverable(AgentbridgeError):
    """The chat service refused a post for good (retrying the same call cannot help).

    Raised only after the backend's own remedies (joining the channel, a degraded form) failed.
    The mirror records the events as skipped, counts them and alerts once; it never loops on
    them. ``reason`` is the service's error code; ``channel_ok`` says the channel itself still
    takes posts, so a note about the skip can be posted there.
    """

    def __init__(self, reason: str, detail: str = "", *, channel_ok: bool = False) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.channel_ok = channel_ok


@dataclass(frozen=True, slots=True)
class Posted:
    ref: str
    """The backend's handle for the message (a Slack ``ts``, a console sequence number)."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """A human's message in an agent's channel (the backend has filtered out everything else)."""

    channel: str
    user: str
    text: str
    ref: str
    thread: str | None = None
    event_id: str | None = None
    sender: str = ""
    """Display name, for the prefix in shared channels."""
    shared: bool = False
    """The channel has several people in it: prefix the pasted text with the sender."""
    is_bot: bool = False


CommandHandler = Callable[[str, str, str], Awaitable[str]]
"""``/agent`` handler: (user, channel, text) -> the reply only that user sees."""


class ChatBackend(Protocol):
    name: str
    coalesce: bool
    """True for rate-limited backends: the mirror then joins a burst into fewer messages."""
    live_status: bool
    """True when a per-turn status line (posted, then edited) is worth showing."""

    @property
    def channels(self) -> Mapping[str, str]:
        """Resolved channel ids by configured name (``#name`` -> id); empty when names are ids."""
        ...

    command_handler: CommandHandler | None
    """Who answers the ``/agent`` slash command (set by the channel bridge; None: nobody)."""

    async def resolve_channels(self, wanted: Sequence[str]) -> list[str]:
        """Resolve (and join, where allowed) the agents' channels; one line per problem."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def post(self, msg: Outgoing) -> Posted:
        """Post a message (or upload it as a file when ``msg.as_file``)."""
        ...

    async def update(self, channel: str, ref: str, text: str) -> None: ...

    async def react(self, channel: str, ref: str, emoji: str) -> None: ...

    async def notify_user(self, channel: str, user: str, text: str) -> None:
        """A message only ``user`` sees (Slack's ephemeral messages)."""
        ...

    async def find_posted(
        self, channel: str, event_ids: Sequence[str], thread: str | None = None
    ) -> dict[str, str]:
        """Refs of messages already posted for these event ids (for settling crash leftovers).

        A backend that cannot tell returns ``{}``, and those events are posted again.
        """
        ...

    def receive(self) -> AsyncIterator[Incoming]:
        """Human messages addressed to agents, as they arrive."""
        ...
