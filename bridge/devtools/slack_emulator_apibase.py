"""What every group of the emulator's Web API methods shares: posting as the bot, checks, echo.

`WebApi` (chat, conversations, reactions, users), `FilesApi` and `InteractiveApi` all derive from
`ApiBase`, so a message is built, checked and echoed the same way whichever method posts it:
text over 40,000 characters is `msg_too_long` (Slack's documented limit), blocks are checked as
Slack checks them (`invalid_blocks`), and the bot's own posts come back as events, because on
real Slack the bridge receives its own messages and must ignore them.
"""

from __future__ import annotations

from typing import Any

from bridge.devtools.slack_emulator_blocks import MESSAGE_BLOCKS, validate_blocks
from bridge.devtools.slack_emulator_events import message_event
from bridge.devtools.slack_emulator_model import (
    ApiError,
    Channel,
    Json,
    flag,
    json_param,
    parse_metadata,
    public,
    thread_root,
)
from bridge.devtools.slack_emulator_socket import SocketHub
from bridge.devtools.slack_emulator_state import WorkspaceState

MAX_TEXT = 40_000
"""Slack: a message's `text` over 40,000 characters is refused with `msg_too_long`."""


def check_text(text: str) -> str:
    if len(text) > MAX_TEXT:
        raise ApiError("msg_too_long")
    return text


class ApiBase:
    """State and helpers shared by the Web API method groups (see the module docstring)."""

    def __init__(self, state: WorkspaceState, hub: SocketHub, echo_bot_messages: bool = True):
        self.state = state
        self.hub = hub
        self.echo_bot_messages = echo_bot_messages
        self.http_base = ""  # http://127.0.0.1:PORT/, set once the port is known

    def _member_channel(self, ref: Any) -> Channel:
        ch = self.state.channel(str(ref or ""))
        if self.state.bot_user_id not in ch.members:
            raise ApiError("not_in_channel")
        return ch

    def _bot_message(self, text: str) -> Json:
        """A message as the app's bot user posts it: `bot_id` and `app_id`, no subtype."""
        st = self.state
        msg: Json = {"type": "message", "ts": st.new_ts(), "user": st.bot_user_id}
        msg.update(bot_id=st.bot_id, app_id=st.app_id, team=st.team_id, text=check_text(text))
        name = st.users[st.bot_user_id].name
        msg["bot_profile"] = {"id": st.bot_id, "app_id": st.app_id, "name": name}
        return msg

    @staticmethod
    def _apply_content(msg: Json, params: Json) -> None:
        """Blocks are checked like Slack checks them (ids filled in), attachments stored
        verbatim, metadata validated. Nothing is rendered."""
        if params.get("blocks"):
            msg["blocks"] = validate_blocks(json_param(params["blocks"]), MESSAGE_BLOCKS)
        if params.get("attachments"):
            msg["attachments"] = json_param(params["attachments"])
        metadata = parse_metadata(params.get("metadata"))
        if metadata is not None:
            msg["metadata"] = metadata

    def _echo(self, event: Json) -> None:
        if self.echo_bot_messages:
            self.hub.emit_event(event)

    def post_as_bot(self, channel: Any, params: Json, check_member: bool = True) -> Json:
        """Store a message from the bot (chat.postMessage, a response_url answer) and echo it."""
        st = self.state
        with st.lock:
            ch = self._member_channel(channel) if check_member else st.channel(str(channel))
            text = str(params.get("text") or "")
            if not text and not params.get("blocks") and not params.get("attachments"):
                raise ApiError("no_text")
            msg = self._bot_message(text)
            if params.get("thread_ts"):
                msg["thread_ts"] = thread_root(ch, params["thread_ts"])
                if flag(params.get("reply_broadcast")):
                    msg["subtype"] = "thread_broadcast"
            self._apply_content(msg, params)
            st.store_message(ch, msg)
            event = message_event(ch, msg)
            out = {"channel": ch.id, "ts": msg["ts"], "message": public(msg, True)}
        self._echo(event)
        return out
