"""Events API payloads of the Slack emulator, built from stored messages as Slack builds them.

`message` events carry the stored message minus what Slack leaves out of events (metadata,
reactions); edits and deletions nest the message as Slack does; joining and leaving a channel
have their side effects (a `channel_join` / `channel_leave` message and a membership event).
Call these with the state lock held; events are emitted after it is released.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from bridge.devtools.slack_emulator_model import Channel, Json
from bridge.devtools.slack_emulator_state import WorkspaceState

if TYPE_CHECKING:
    from bridge.devtools.slack_emulator_socket import SocketHub


def message_event(ch: Channel, msg: Json, **extra: Any) -> Json:
    """A `message` event for a message stored in `ch`; metadata and reactions are not part
    of Slack's message events."""
    event = {k: copy.deepcopy(v) for k, v in msg.items() if k not in ("metadata", "reactions")}
    ctype = "group" if ch.is_private else "channel"
    event.update(channel=ch.id, event_ts=msg["ts"], channel_type=ctype, **extra)
    return event


def changed_event(state: WorkspaceState, ch: Channel, msg: Json, previous: Json) -> Json:
    """`message_changed`: the new and previous message nested, a fresh event ts outside."""
    ts = state.new_ts()
    new, prev = message_event(ch, msg), message_event(ch, previous)
    for part in (new, prev):
        for key in ("channel", "event_ts", "channel_type"):
            part.pop(key)
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": ch.id,
        "ts": ts,
        "event_ts": ts,
        "channel_type": "group" if ch.is_private else "channel",
        "message": new,
        "previous_message": prev,
    }


def deleted_event(state: WorkspaceState, ch: Channel, previous: Json) -> Json:
    """`message_deleted`: `deleted_ts` names the message, `previous_message` holds it."""
    event = changed_event(state, ch, previous, previous)
    del event["message"]
    event.update(subtype="message_deleted", deleted_ts=previous["ts"])
    return event


def join_channel(state: WorkspaceState, hub: SocketHub, user: str, ch: Channel) -> str | None:
    """Add `user` to `ch` with Slack's side effects: a `channel_join` message and the
    `member_joined_channel` event. Returns the join message ts, None if already a member."""
    with state.lock:
        state.user(user)
        if user in ch.members:
            return None
        ch.members.add(user)
        msg: Json = {"type": "message", "subtype": "channel_join", "ts": state.new_ts()}
        msg.update(user=user, text=f"<@{user}> has joined the channel")
        state.store_message(ch, msg)
        event = message_event(ch, msg)
        joined = {"type": "member_joined_channel", "user": user, "channel": ch.id}
        joined.update(channel_type="G" if ch.is_private else "C", team=state.team_id)
        joined["event_ts"] = msg["ts"]
    hub.emit_event(event)
    hub.emit_event(joined)
    return str(msg["ts"])


def leave_channel(state: WorkspaceState, hub: SocketHub, user: str, ch: Channel) -> str | None:
    """Remove `user` from `ch` (a person leaving, or the bot being removed, after which Slack
    answers `not_in_channel`): a `channel_leave` message and `member_left_channel`."""
    with state.lock:
        state.user(user)
        if user not in ch.members:
            return None
        ch.members.discard(user)
        msg: Json = {"type": "message", "subtype": "channel_leave", "ts": state.new_ts()}
        msg.update(user=user, text=f"<@{user}> has left the channel")
        state.store_message(ch, msg)
        event = message_event(ch, msg)
        left = {"type": "member_left_channel", "user": user, "channel": ch.id}
        left.update(channel_type="G" if ch.is_private else "C", team=state.team_id)
        left["event_ts"] = msg["ts"]
    hub.emit_event(event)
    hub.emit_event(left)
    return str(msg["ts"])
