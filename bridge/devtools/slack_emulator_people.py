"""The Slack emulator's people: what a test (or the demo page) does as a human in the workspace.

Each action changes the workspace the way Slack's own client would, then delivers what Slack
would deliver to the app over Socket Mode: a posted message, an edit, a reaction, a slash
command, a click on a button or menu, a submitted modal, a shared file. `SlackEmulator` mixes
this in; it is a separate module only to keep each file readable.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from bridge.devtools.slack_emulator_api import WebApi
from bridge.devtools.slack_emulator_events import (
    changed_event,
    deleted_event,
    join_channel,
    leave_channel,
    message_event,
)
from bridge.devtools.slack_emulator_files import user_file_message
from bridge.devtools.slack_emulator_interactive import (
    VERIFICATION_TOKEN,
    block_actions,
    issue_response_url,
    issue_trigger,
)
from bridge.devtools.slack_emulator_model import Channel, Json, ResponseTarget, thread_root
from bridge.devtools.slack_emulator_socket import SocketHub
from bridge.devtools.slack_emulator_state import WorkspaceState
from bridge.devtools.slack_emulator_views import close_view, view_submission


class People:
    """Acting as humans; mixed into `SlackEmulator`, which provides the attributes below."""

    state: WorkspaceState
    hub: SocketHub
    api: WebApi
    app_mentions: bool

    def join(self, user_id: str, channel: str) -> str | None:
        """`user_id` joins: `channel_join` message + `member_joined_channel` event."""
        with self.state.lock:
            ch = self.state.channel(channel)
        return join_channel(self.state, self.hub, user_id, ch)

    def leave(self, user_id: str, channel: str) -> str | None:
        """`user_id` leaves (or, for the bot user, is removed: from then on Slack answers
        `not_in_channel` to its posts there): `channel_leave` + `member_left_channel`."""
        with self.state.lock:
            ch = self.state.channel(channel)
        return leave_channel(self.state, self.hub, user_id, ch)

    def _member(self, user_id: str, channel: str) -> Channel:
        with self.state.lock:
            ch = self.state.channel(channel)
            self.state.user(user_id)
            if user_id not in ch.members:
                raise ValueError(f"{user_id} is not in #{ch.name}; call join() first")
            return ch

    def post_as_user(
        self, user_id: str, channel: str, text: str, thread_ts: str | None = None
    ) -> str:
        """A human posts; stores the message and delivers its `message` event (and an
        `app_mention` event when the text mentions the bot, as Slack does). Returns its ts."""
        st = self.state
        with st.lock:
            ch = self._member(user_id, channel)
            msg: Json = {"type": "message", "ts": st.new_ts(), "user": user_id, "text": text}
            msg["team"] = st.team_id
            extra: Json = {}
            if thread_ts is not None:
                msg["thread_ts"] = thread_root(ch, thread_ts)
                extra["parent_user_id"] = st.message(ch, msg["thread_ts"]).get("user")
            st.store_message(ch, msg)
            event = message_event(ch, msg, **extra)
        self.hub.emit_event(event)
        if self.app_mentions and f"<@{st.bot_user_id}>" in text:
            mention = {k: v for k, v in event.items() if k not in ("channel_type", "subtype")}
            self.hub.emit_event({**mention, "type": "app_mention"})
        return str(msg["ts"])

    def post_files_as_user(
        self,
        user_id: str,
        channel: str,
        files: Sequence[tuple[str, bytes]],
        text: str = "",
        thread_ts: str | None = None,
    ) -> str:
        """A human shares files ((filename, bytes) pairs) with an optional comment: a
        `message` event with `subtype: "file_share"` and `files` (`url_private_download`
        needs the bot token). Returns the message ts."""
        if not files:
            raise ValueError("post_files_as_user needs at least one file")
        with self.state.lock:
            ch = self._member(user_id, channel)
            msg, event = user_file_message(
                self.state, self.api.http_base, user_id, ch, files, text, thread_ts
            )
        self.hub.emit_event(event)
        return str(msg["ts"])

    def edit_as_user(self, user_id: str, channel: str, ts: str, text: str) -> None:
        """A human edits their message: a `message_changed` event."""
        st = self.state
        with st.lock:
            ch = self._member(user_id, channel)
            msg = st.message(ch, ts)
            if msg.get("user") != user_id:
                raise ValueError(f"message {ts} is not by {user_id}")
            previous = copy.deepcopy(msg)
            msg["text"] = text
            msg["edited"] = {"user": user_id, "ts": st.new_ts()}
            st.touch()
            event = changed_event(st, ch, msg, previous)
        self.hub.emit_event(event)

    def delete_as_user(self, user_id: str, channel: str, ts: str) -> None:
        """A human deletes their message: a `message_deleted` event."""
        st = self.state
        with st.lock:
            ch = self._member(user_id, channel)
            if st.message(ch, ts).get("user") != user_id:
                raise ValueError(f"message {ts} is not by {user_id}")
            event = deleted_event(st, ch, st.remove_message(ch, ts))
        self.hub.emit_event(event)

    def react_as_user(self, user_id: str, channel: str, ts: str, name: str) -> None:
        """A human adds a reaction: a `reaction_added` event."""
        st = self.state
        with st.lock:
            ch = self._member(user_id, channel)
            author = st.message(ch, ts).get("user")
            st.add_reaction(ch, ts, name, user_id)
            event: Json = {"type": "reaction_added", "user": user_id, "reaction": name}
            event.update(item_user=author, event_ts=st.new_ts())
            event["item"] = {"type": "message", "channel": ch.id, "ts": ts}
        self.hub.emit_event(event)

    def slash_command(
        self, user_id: str, channel: str, command: str = "/agent", text: str = ""
    ) -> Json:
        """A human runs a slash command; returns the payload sent (incl. `response_url` and
        a `trigger_id` good for `views.open`)."""
        st = self.state
        with st.lock:
            ch, user = st.channel(channel), st.user(user_id)
            url = issue_response_url(st, self.api.http_base, ResponseTarget(ch.id, user.id))
            payload: Json = dict(
                token=VERIFICATION_TOKEN, team_id=st.team_id, team_domain="emulator",
                channel_id=ch.id, channel_name=ch.name, user_id=user.id, user_name=user.name,
                command=command, text=text, api_app_id=st.app_id, is_enterprise_install="false",
                response_url=url, trigger_id=issue_trigger(st, user.id),
            )  # fmt: skip
        self.hub.emit("slash_commands", payload, accepts_response_payload=True)
        return copy.deepcopy(payload)

    def click(
        self,
        user_id: str,
        channel: str,
        ts: str,
        action_id: str,
        value: Any = None,
        selected_options: Sequence[Any] | None = None,
        *,
        block_id: str | None = None,
    ) -> Json:
        """A human uses an interactive element of message `ts` (or of an ephemeral message
        they see): a button (`value` must match the button's, if given), a single select or
        radio group (`value` = the chosen option's value), checkboxes or a multi select
        (`selected_options` = every ticked option's value, or option objects). Sends a
        `block_actions` payload, shaped like Slack's, and returns it."""
        with self.state.lock:
            ch = self._member(user_id, channel)
            payload = block_actions(
                self.state, self.api.http_base, user_id, ch, ts, action_id,
                value, selected_options, block_id,
            )  # fmt: skip
        self.hub.emit("interactive", payload)
        return copy.deepcopy(payload)

    def submit_view(self, user_id: str, view_id: str, values: Mapping[str, Any]) -> Json:
        """A human submits the modal `view_id` that the app opened for them. `values`:
        {block_id: {action_id: value}}, or {block_id: value} for an input block (text, an
        option value, or a list of option values). Sends `view_submission` and returns it;
        the view's fate follows the app's ack (see `views()`)."""
        with self.state.lock:
            payload = view_submission(self.state, user_id, view_id, values)
        self.hub.emit("interactive", payload, accepts_response_payload=True)
        return copy.deepcopy(payload)

    def close_view(self, user_id: str, view_id: str) -> Json | None:
        """A human dismisses the modal; a `view_closed` payload is sent (and returned) only if
        the view was opened with `notify_on_close`."""
        with self.state.lock:
            payload = close_view(self.state, user_id, view_id)
        if payload is not None:
            self.hub.emit("interactive", payload)
        return copy.deepcopy(payload)

    def send_event(self, event: Json) -> str:
        """Deliver an arbitrary Events API event; returns its `event_id`."""
        return str(self.hub.emit_event(copy.deepcopy(event)).event_id)

    def send_interactive(self, payload: Json, accepts_response_payload: bool = False) -> None:
        """Deliver an `interactive` envelope built by hand (prefer `click` / `submit_view`)."""
        self.hub.emit("interactive", copy.deepcopy(payload), accepts_response_payload)
