"""Bolt listeners: plain functions that turn Slack events into the runner's own types.

Only what a person typed gets through: edits, deletes, joins and every other message subtype
are dropped here, and so are the bot's own posts (Slack echoes them back as events). Bots other
than ours are passed on marked as bots; the agent's ``allow_bots`` decides.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Protocol

from bridge.chat.protocol import Action, ActionHandler, CommandHandler, Incoming
from bridge.chat.slack.markup import unescape


class ListenerHost(Protocol):
    """What the listeners need from the backend (so they do not import it: no cycle)."""

    bot_user_id: str
    bot_id: str
    command_handler: CommandHandler | None
    on_action: ActionHandler | None
    incoming: asyncio.Queue[Incoming]

    async def user_name(self, user: str) -> str: ...

    async def humans_in(self, channel: str) -> int: ...

    async def notify_user(self, channel: str, user: str, text: str) -> None: ...


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
