"""The chat side of the bridge, as one small protocol every backend implements.

The mirror speaks only this protocol, so Slack and the console are interchangeable. Every post
carries the ledger's event id: a backend that can look posts up by it (Slack message metadata,
the console's outbox file) lets the runner settle a post whose answer was lost in a crash,
instead of guessing between a loss and a duplicate.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

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
    blocks: tuple[Mapping[str, Any], ...] = ()
    """Block Kit blocks (buttons, checkboxes...); ``text`` stays the notification fallback.
    Backends without blocks (the console) show ``text`` only."""

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


class NotKept(AgentbridgeError):
    """The runner did not keep a message (it is stopping, or queueing it failed): the backend
    must not acknowledge it, so the chat service delivers it again."""


class Receipt:
    """The consumer's answer to one incoming message: kept (durably queued, or deliberately
    ignored) or not. A backend whose service redelivers unacknowledged events (Slack) waits on
    this before acknowledging, so a crash between receipt and the queue commit loses nothing.
    Owned by the event loop that created it.

    ``held``: the consumer may hold the message through a store outage, retrying until the
    database is back (a Slack event: unacked meanwhile, its redeliveries deduplicated). False
    for an event drained inside a routed row's transaction (:mod:`bridge.cluster.router`),
    which a lost connection dooms: the drain rolls it back and retries the row instead."""

    def __init__(self, *, held: bool = True) -> None:
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.held = held

    def keep(self) -> None:
        if not self._done.done():
            self._done.set_result(None)

    def refuse(self, why: BaseException) -> None:
        if not self._done.done():
            self._done.set_exception(why)
            self._done.exception()  # retrieved: no "never retrieved" noise if nobody waits

    @property
    def settled(self) -> bool:
        return self._done.done()

    @property
    def kept(self) -> bool:
        """Settled as kept (not refused, not still open)."""
        return self._done.done() and self._done.exception() is None

    @property
    def why(self) -> str:
        """Why it was refused ("" when kept or still open)."""
        if not self._done.done() or self._done.exception() is None:
            return ""
        return str(self._done.exception())

    async def wait(self) -> None:
        """Return once kept; raise :class:`NotKept` (or the cause) when not."""
        await asyncio.shield(self._done)


class FileTooLarge(AgentbridgeError):
    """An attachment is bigger than the limit its download was given."""


class FileNotServed(AgentbridgeError):
    """The chat service answered a download with something other than the file (Slack's
    sign-in page when the token may not read files); the message says why, for the agent
    and the log, and nothing is saved."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file shared with a message; ``fetch(limit)`` downloads it with the backend's own
    credentials (which never leave the backend) and raises when it is over ``limit`` bytes."""

    file_id: str
    name: str
    size: int
    fetch: Callable[[int], Awaitable[bytes]] = field(compare=False, repr=False)
    source: str = ""
    """Where the backend fetches it from (Slack's ``url_private_download``): not a secret, it
    needs the backend's credentials, and what lets another runner's backend fetch the same
    file for a message routed to it (:meth:`ChatBackend.attachment`)."""


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
    files: tuple[Attachment, ...] = ()
    receipt: Receipt | None = field(default=None, compare=False, repr=False)
    """Settled by the consumer; None for backends with nothing to acknowledge."""


CommandHandler = Callable[[str, str, str], Awaitable[str]]
"""``/agent`` handler: (user, channel, text) -> the reply only that user sees."""


@dataclass(frozen=True, slots=True)
class Action:
    """A person used an interactive element of one of our messages, or submitted a modal.

    Backend-neutral: the channel side decides what it means from ``action_id`` (each feature
    owns a prefix, e.g. ``q:`` for questions, ``stuck:`` for stuck-turn alerts) and checks the
    person's access itself; the backend only translates and acknowledges.
    """

    user: str
    channel: str
    """Channel id (Slack) or name (console) of the message; "" for a modal submission."""
    message_ref: str
    """The message holding the element (a Slack ``ts``); "" for a modal submission."""
    action_id: str
    """The element's ``action_id``, or the modal's ``callback_id`` for a submission."""
    value: str | None = None
    """A button's value, or the chosen option's value of a single select."""
    values: tuple[str, ...] = ()
    """Every ticked option's value (checkboxes, multi-selects)."""
    thread: str | None = None
    """The thread the message is in, if any."""
    trigger_id: str | None = None
    """Lets the handler open a modal in answer (valid for a few seconds)."""
    block_id: str | None = None
    form: Mapping[str, str] = field(default_factory=dict)
    """A modal's inputs, ``"block_id.action_id" -> text``."""
    private_metadata: str = ""
    """What the opener stored in the modal (e.g. which question it answers)."""


ActionHandler = Callable[[Action], Awaitable[str | None]]
"""Handles one :class:`Action`; returns a note only that person should see (a refusal, a
confirmation) or None. It should return quickly: the click is acknowledged after it returns,
so a runner that dies while handling it leaves the click unacknowledged (the person sees an
error and can click again) rather than silently lost."""


@dataclass(frozen=True, slots=True)
class ChatFigures:
    """What an operator watches of a backend (the metrics endpoint, bridge/ops/metrics.py)."""

    rate_limited: Mapping[str, int] = field(default_factory=dict)
    """429 answers so far, by method."""
    connected: bool | None = None
    """Whether its event connection is up; None for a backend without one (the console)."""


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

    on_action: ActionHandler | None
    """Who handles clicks and modal submissions (set by the channel side; None: ignored)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def figures(self) -> ChatFigures:
        """Its operator figures now (cheap: read once a second)."""
        ...

    async def post(self, msg: Outgoing) -> Posted:
        """Post a message (or upload it as a file when ``msg.as_file``)."""
        ...

    async def update(
        self, channel: str, ref: str, text: str, blocks: Sequence[Mapping[str, Any]] | None = None
    ) -> None:
        """Edit a message; ``blocks=None`` (or empty) leaves it without blocks."""
        ...

    async def open_view(self, trigger_id: str, view: Mapping[str, Any]) -> None:
        """Open a modal for the person whose action carried ``trigger_id`` (a no-op where a
        backend has none: features then fall back to a thread reply)."""
        ...

    async def reserve(self, channel: str) -> float:
        """Wait for a posting slot in ``channel`` and keep it for the next :meth:`post` there, so
        the caller builds that message only once the slot has come (lines arriving meanwhile
        join it); seconds waited. Unpaced backends return 0.0 at once."""
        ...

    async def delete(self, channel: str, ref: str) -> bool:
        """Delete one of our messages (a finished turn's status line); False where the backend
        cannot, and the caller edits the message instead."""
        ...

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

    def attachment(self, file_id: str, name: str, size: int, source: str) -> Attachment:
        """A file another runner's backend of the same app received (a message routed here
        from another host), fetched with this backend's own credentials."""
        ...

    def receive(self) -> AsyncIterator[Incoming]:
        """Human messages addressed to agents, as they arrive."""
        ...
