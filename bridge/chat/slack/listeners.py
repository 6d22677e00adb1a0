"""Bolt listeners: plain functions that turn Slack events into the runner's own types.

Only what a person typed gets through: edits, deletes, joins and every other message subtype
are dropped here, and so are the bot's own posts (Slack echoes them back as events). Bots other
than ours are passed on marked as bots; the agent's ``allow_bots`` decides.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Protocol

from bridge.chat.protocol import CommandHandler, Incoming
from bridge.chat.slack.markup import unescape


class ListenerHost(Protocol):
    """What the listeners need from the backend (so they do not import it: no cycle)."""

    bot_user_id: str
    bot_id: str
    command_handler: CommandHandler | None
    incoming: asyncio.Queue[Incoming]

    async def user_name(self, user: str) -> str: ...

    async def humans_in(self, channel: str) -> int: ...


_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
#: Subtypes that still carry something a person typed.
HUMAN_SUBTYPES = frozenset({None, "thread_broadcast"})


def register(transport: Any, backend: ListenerHost) -> None:
    async def on_message(event: dict[str, Any], body: dict[str, Any]) -> None:
        await handle_message(backend, event, body)

    async def on_agent_command(ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack()
        handler = backend.command_handler
        if handler is None:
            await respond("agentbridge is starting; try again in a moment.")
            return
        reply = await handler(
            str(command.get("user_id", "")),
            str(command.get("channel_id", "")),
            str(command.get("text", "")),
        )
        await respond(reply)

    async def on_other(body: dict[str, Any]) -> None:
        return None  # acknowledged and ignored (joins, reactions, mentions)

    transport.on_event("message", on_message)
    transport.on_command("/agent", on_agent_command)
    for name in ("app_mention", "reaction_added", "reaction_removed", "member_joined_channel"):
        transport.on_event(name, on_other)


async def handle_message(
    backend: ListenerHost, event: dict[str, Any], body: dict[str, Any]
) -> None:
    if event.get("subtype") not in HUMAN_SUBTYPES or event.get("hidden"):
        return
    user = str(event.get("user") or "")
    if user == backend.bot_user_id or (backend.bot_id and event.get("bot_id") == backend.bot_id):
        return
    channel = str(event.get("channel") or "")
    raw = str(event.get("text") or "")
    names = {uid: await backend.user_name(uid) for uid in _MENTION.findall(raw)}
    text = unescape(raw, names.get)
    humans = await backend.humans_in(channel)
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
        )
    )
