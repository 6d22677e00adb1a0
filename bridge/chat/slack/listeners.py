"""Bolt listeners: plain functions that turn Slack events into the runner's own types.

Only what a person typed (and the files they shared) gets through: edits, deletes, joins and
every other message subtype are dropped here, and so are the bot's own posts (Slack echoes them
back as events). Bots other than ours are passed on marked as bots; the agent's ``allow_bots``
decides.

Nothing is acknowledged before it is kept. The app runs with ``process_before_response`` (see
:mod:`bridge.chat.slack.adapter.socket_mode`), so Bolt acks an event only when its listener
returns, and answers nothing when it raises. The message listener hands the message over with a
:class:`~bridge.chat.protocol.Receipt` and waits for it: kept (the prompt row is committed, or
the message was deliberately ignored) returns and the event is acked; not kept (queueing failed,
the runner is stopping) raises, so Slack delivers the event again, to this runner or the next.
``/agent`` is acked first and answered from a background task: Slack wants a slash command's
ack within 3 seconds, and a command is never redelivered anyway.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
from pathlib import Path
from typing import Any, Protocol

from bridge.aio import TaskSet
from bridge.chat.protocol import (
    Action,
    ActionHandler,
    Attachment,
    CommandHandler,
    Incoming,
    NotKept,
    Receipt,
)
from bridge.chat.slack.markup import unescape

log = logging.getLogger("agentbridge.slack")

#: Test-only crash point (tests/e2e/test_trust_inbound.py): when set to a path that does not
#: exist yet, the runner creates it and SIGKILLs itself right after receiving a message, before
#: queueing it, so the test can show that the message is redelivered and kept, not lost.
CRASH_AFTER_RECEIPT_ENV = "AGENTBRIDGE_TEST_CRASH_AFTER_RECEIPT"


class ListenerHost(Protocol):
    """What the listeners need from the backend (so they do not import it: no cycle)."""

    bot_user_id: str
    bot_id: str
    command_handler: CommandHandler | None
    on_action: ActionHandler | None
    incoming: asyncio.Queue[Incoming]
    accepting: bool
    """False once the backend is closing: new messages are then not acknowledged."""
    receipts: set[Receipt]
    """Receipts still waited on (the backend refuses them all when it closes)."""

    async def user_name(self, user: str) -> str: ...

    async def humans_in(self, channel: str) -> int: ...

    async def notify_user(self, channel: str, user: str, text: str) -> None: ...

    async def download(self, url: str, limit: int) -> bytes: ...


_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
#: Subtypes that still carry something a person typed or shared.
HUMAN_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})


def register(transport: Any, backend: ListenerHost) -> None:
    replies = TaskSet()

    async def on_message(event: dict[str, Any], body: dict[str, Any]) -> None:
        await handle_message(backend, event, body)

    async def answer(command: dict[str, Any], respond: Any) -> None:
        handler = backend.command_handler
        try:
            if handler is None:
                await respond("agentbridge is starting; try again in a moment.")
                return
            reply = await handler(
                str(command.get("user_id", "")),
                str(command.get("channel_id", "")),
                str(command.get("text", "")),
            )
            await respond(reply)
        except Exception:
            log.exception("slack: /agent failed")

    async def on_agent_command(ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack()
        replies.spawn(answer(command, respond))

    async def on_action(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        try:
            await handle_action(backend, _action_of(body, action))
        finally:
            await ack()

    async def on_view(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        try:
            await handle_action(backend, _view_of(body, view))
        finally:
            await ack()

    async def on_other(body: dict[str, Any]) -> None:
        return None  # acknowledged and ignored (joins, reactions, mentions)

    transport.on_event("message", on_message)
    transport.on_command("/agent", on_agent_command)
    transport.on_action(on_action)
    transport.on_view(on_view)
    for name in ("app_mention", "reaction_added", "reaction_removed", "member_joined_channel"):
        transport.on_event(name, on_other)


def attachment(backend: ListenerHost, file_id: str, name: str, size: int, url: str) -> Attachment:
    """A shared file, fetched later from ``url`` with the bot token."""

    async def fetch(limit: int) -> bytes:
        if not url:
            raise ValueError("Slack gave no download URL for this file")
        return await backend.download(url, limit)

    return Attachment(file_id=file_id, name=name, size=size, fetch=fetch, source=url)


def attachments(backend: ListenerHost, event: dict[str, Any]) -> tuple[Attachment, ...]:
    """The files of a ``file_share`` message."""
    return tuple(
        attachment(
            backend,
            str(f.get("id") or ""),
            str(f.get("name") or f.get("title") or "file"),
            int(f.get("size") or 0),
            str(f.get("url_private_download") or f.get("url_private") or ""),
        )
        for f in event.get("files") or []
        if isinstance(f, dict)
    )


def _crash_point() -> None:
    marker = os.environ.get(CRASH_AFTER_RECEIPT_ENV)
    if not marker:
        return
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)
    log.warning("slack: test crash point reached (%s); SIGKILL", Path(marker).name)
    os.kill(os.getpid(), signal.SIGKILL)


async def handle_message(
    backend: ListenerHost, event: dict[str, Any], body: dict[str, Any]
) -> None:
    if event.get("subtype") not in HUMAN_SUBTYPES or event.get("hidden"):
        return
    user = str(event.get("user") or "")
    if user == backend.bot_user_id or (backend.bot_id and event.get("bot_id") == backend.bot_id):
        return
    if not backend.accepting:
        raise NotKept("the runner is stopping; Slack will deliver this again")
    _crash_point()
    channel = str(event.get("channel") or "")
    raw = str(event.get("text") or "")
    names = {uid: await backend.user_name(uid) for uid in _MENTION.findall(raw)}
    text = unescape(raw, names.get)
    humans = await backend.humans_in(channel)
    receipt = Receipt()
    backend.receipts.add(receipt)
    try:
        await backend.incoming.put(
            Incoming(
                channel=channel,
                user=user,
                text=text,
                ref=str(event.get("ts") or ""),
                thread=event.get("thread_ts"),
                event_id=body.get("event_id"),
                sender=await backend.user_name(user) if user else "",
                shared=humans > 1,
                is_bot=bool(event.get("bot_id")),
                files=attachments(backend, event),
                receipt=receipt,
            )
        )
        await receipt.wait()  # raises when not kept: no ack, Slack redelivers
    finally:
        backend.receipts.discard(receipt)


def _action_of(body: dict[str, Any], action: dict[str, Any]) -> Action:
    """A ``block_actions`` element use, in the runner's terms."""
    container = body.get("container") or {}
    message = body.get("message") or {}
    selected = action.get("selected_options") or []
    option = action.get("selected_option") or {}
    return Action(
        user=str((body.get("user") or {}).get("id") or ""),
        channel=str((body.get("channel") or {}).get("id") or container.get("channel_id") or ""),
        message_ref=str(container.get("message_ts") or message.get("ts") or ""),
        action_id=str(action.get("action_id") or ""),
        value=action.get("value") or option.get("value"),
        values=tuple(str(o.get("value")) for o in selected if isinstance(o, dict)),
        thread=message.get("thread_ts") or container.get("thread_ts"),
        trigger_id=body.get("trigger_id"),
        block_id=action.get("block_id"),
    )


def _view_of(body: dict[str, Any], view: dict[str, Any]) -> Action:
    """A modal submission: its inputs flattened to ``block_id.action_id -> text``."""
    form: dict[str, str] = {}
    for block_id, elements in ((view.get("state") or {}).get("values") or {}).items():
        for action_id, state in (elements or {}).items():
            value = state.get("value")
            if value is None:
                option = state.get("selected_option") or {}
                value = option.get("value")
            if value is None and state.get("selected_options") is not None:
                value = ",".join(str(o.get("value")) for o in state["selected_options"])
            form[f"{block_id}.{action_id}"] = "" if value is None else str(value)
    return Action(
        user=str((body.get("user") or {}).get("id") or ""),
        channel="",
        message_ref="",
        action_id=str(view.get("callback_id") or ""),
        trigger_id=body.get("trigger_id"),
        form=form,
        private_metadata=str(view.get("private_metadata") or ""),
    )


async def handle_action(host: ListenerHost, action: Action) -> None:
    """Run the channel side's handler, then tell the person its note (ephemeral)."""
    handler = host.on_action
    if handler is None:
        return
    note = await handler(action)
    if note and action.channel:
        await host.notify_user(action.channel, action.user, note)
