"""Interactivity in the Slack emulator: clicks on Block Kit elements, triggers, response URLs.

A click becomes a Socket Mode `interactive` envelope with a `block_actions` payload shaped like
Slack's (https://docs.slack.dev/reference/interaction-payloads/block_actions-payload): the user,
the container (`message_ts`, `channel_id`, `is_ephemeral`), a `trigger_id` (valid 3 seconds, for
`views.open`), the whole message with its blocks (left out for an ephemeral one, which the app
cannot read), `state.values` of every stateful element as this user left it, a `response_url`
and the one action. The `response_url` answers as Slack's does, up to 5 times: a new ephemeral
message for the user by default, `response_type: in_channel` for a visible one,
`replace_original` / `delete_original` to change the clicked message.
"""

from __future__ import annotations

import copy
import secrets
import time
import uuid
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from bridge.devtools.slack_emulator_apibase import ApiBase, check_text
from bridge.devtools.slack_emulator_blocks import (
    MESSAGE_BLOCKS,
    find_element,
    make_action,
    state_values,
    validate_blocks,
)
from bridge.devtools.slack_emulator_events import changed_event, deleted_event
from bridge.devtools.slack_emulator_model import (
    ApiError,
    Channel,
    Json,
    ResponseTarget,
    flag,
    json_param,
    public,
)
from bridge.devtools.slack_emulator_state import WorkspaceState

VERIFICATION_TOKEN = "emulator-verification-token"
RESPONSE_URL_USES = 5
"""Slack: a response_url may be used "up to 5 times within 30 minutes"."""
TRIGGER_SECONDS = 3.0
"""Slack: a trigger_id "expires in 3 seconds"; used once."""


def team_ref(st: WorkspaceState) -> Json:
    return {"id": st.team_id, "domain": "emulator"}


def issue_trigger(st: WorkspaceState, user: str) -> str:
    trigger = f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{secrets.token_hex(16)}"
    st.triggers[trigger] = {"user": user, "issued": st.clock(), "used": False}
    return trigger


def take_trigger(st: WorkspaceState, trigger_id: Any) -> str:
    """The user a trigger was issued to; Slack's errors for a wrong, used or stale one."""
    entry = st.triggers.get(str(trigger_id or ""))
    if entry is None:
        raise ApiError("invalid_trigger_id")
    if entry["used"]:
        raise ApiError("exchanged_trigger_id")
    if st.clock() - entry["issued"] > TRIGGER_SECONDS:
        raise ApiError("expired_trigger_id")
    entry["used"] = True
    return str(entry["user"])


def issue_response_url(st: WorkspaceState, base_url: str, target: ResponseTarget) -> str:
    rid = uuid.uuid4().hex
    st.response_urls[rid] = target
    return f"{base_url}response/{rid}"


def add_ephemeral(st: WorkspaceState, ch: Channel, user: str, params: Json, source: str) -> str:
    """Record a message only `user` sees (chat.postEphemeral, a response_url answer)."""
    ts = st.new_ts()
    text = check_text(str(params.get("text") or ""))
    record: Json = {"channel": ch.id, "user": user, "text": text}
    record.update(thread_ts=params.get("thread_ts"), message_ts=ts, source=source)
    if params.get("blocks"):
        record["blocks"] = validate_blocks(json_param(params["blocks"]), MESSAGE_BLOCKS)
    st.ephemerals.append(record)
    st.touch()
    return ts


def block_actions(
    st: WorkspaceState,
    base_url: str,
    user_id: str,
    ch: Channel,
    ts: str,
    action_id: str,
    value: Any = None,
    selected: Sequence[Any] | None = None,
    block_id: str | None = None,
) -> Json:
    """The `block_actions` payload for `user_id` clicking `action_id` in message `ts` (or in
    an ephemeral message the user sees); remembers the element's new state. Lock held."""
    user = st.user(user_id)
    msg = next((m for m in ch.messages if m["ts"] == ts), None)
    eph = None
    if msg is None:
        eph = next(
            (
                e
                for e in st.ephemerals
                if (e["channel"], e["user"], e["message_ts"]) == (ch.id, user_id, ts)
            ),
            None,
        )
        if eph is None:
            raise LookupError(f"no message {ts} in #{ch.name} that {user_id} can see")
    shown = msg if msg is not None else eph
    assert shown is not None
    blocks = shown.get("blocks") or []
    bid, element = find_element(blocks, action_id, block_id)
    action, entry = make_action(element, bid, st.new_ts(), value, selected)
    chosen = st.block_state.setdefault((ch.id, ts, user_id), {})
    if entry is not None:
        chosen.setdefault(bid, {})[str(element["action_id"])] = entry
    container: Json = {"type": "message", "message_ts": ts, "channel_id": ch.id}
    container["is_ephemeral"] = eph is not None
    if shown.get("thread_ts") and shown["thread_ts"] != ts:
        container["thread_ts"] = shown["thread_ts"]
    payload: Json = {
        "type": "block_actions",
        "user": user.to_ref(st.team_id),
        "api_app_id": st.app_id,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": issue_trigger(st, user_id),
        "team": team_ref(st),
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": ch.id, "name": ch.name},
    }
    if msg is not None:
        payload["message"] = public(msg, with_metadata=False)
    payload["state"] = {"values": state_values(blocks, chosen)}
    target = ResponseTarget(ch.id, user_id, ts, is_ephemeral=eph is not None)
    payload["response_url"] = issue_response_url(st, base_url, target)
    payload["actions"] = [action]
    st.touch()
    return payload


class InteractiveApi(ApiBase):
    """The `response_url` endpoint (slash commands and clicks share it)."""

    async def handle_response_url(self, request: web.Request) -> web.Response:
        rid = request.match_info["rid"]
        try:  # slack_sdk's WebhookClient (bolt's `respond`) sends JSON
            body = await request.json()
        except ValueError:
            return web.json_response({"ok": False, "error": "invalid_payload"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"ok": False, "error": "invalid_payload"}, status=400)
        with self.state.lock:
            target = self.state.response_urls.get(rid)
            if target is None:
                return web.json_response({"ok": False, "error": "no_such_url"}, status=404)
            if target.uses >= RESPONSE_URL_USES:
                return web.json_response({"ok": False, "error": "used_url"}, status=404)
            target.uses += 1
            self.state.responses.append({"source": "response_url", "id": rid, "body": body})
            self.state.touch()
        try:
            self._respond(target, body)
        except ApiError as err:
            return web.json_response({"ok": False, "error": err.error, **err.extra}, status=400)
        return web.json_response({"ok": True})

    def _respond(self, target: ResponseTarget, body: Json) -> None:
        st = self.state
        original = target.message_ts
        if original is not None and (flag(body.get("delete_original"))):
            self._delete_original(target, original)
        elif original is not None and flag(body.get("replace_original")):
            self._replace_original(target, original, body)
        elif body.get("response_type") == "in_channel":
            params = {k: body[k] for k in ("text", "blocks", "thread_ts") if body.get(k)}
            if not params.get("text") and not params.get("blocks"):
                raise ApiError("no_text")
            self.post_as_bot(target.channel, params, check_member=False)
        else:  # Slack's default for a response_url: visible to the person only
            with st.lock:
                ch = st.channel(target.channel)
                add_ephemeral(st, ch, target.user, body, source="response_url")

    def _delete_original(self, target: ResponseTarget, ts: str) -> None:
        st = self.state
        with st.lock:
            ch = st.channel(target.channel)
            if target.is_ephemeral:
                st.ephemerals[:] = [
                    e
                    for e in st.ephemerals
                    if (e["channel"], e["user"], e["message_ts"]) != (ch.id, target.user, ts)
                ]
                st.touch()
                return
            msg = st.message(ch, ts)
            if msg.get("bot_id") != st.bot_id:
                raise ApiError("cant_delete_message")
            st.remove_message(ch, ts)
            event = deleted_event(st, ch, msg)
        self._echo(event)

    def _replace_original(self, target: ResponseTarget, ts: str, body: Json) -> None:
        st = self.state
        with st.lock:
            ch = st.channel(target.channel)
            if target.is_ephemeral:
                for e in st.ephemerals:
                    if (e["channel"], e["user"], e["message_ts"]) == (ch.id, target.user, ts):
                        e["text"] = check_text(str(body.get("text") or ""))
                        e.pop("blocks", None)
                        if body.get("blocks"):
                            e["blocks"] = validate_blocks(json_param(body["blocks"]))
                st.touch()
                return
            msg = st.message(ch, ts)
            if msg.get("bot_id") != st.bot_id:
                raise ApiError("cant_update_message")
            previous = copy.deepcopy(msg)
            msg["text"] = check_text(str(body.get("text") or ""))
            msg.pop("blocks", None)
            self._apply_content(msg, {"blocks": body.get("blocks")})
            msg["edited"] = {"user": st.bot_user_id, "ts": st.new_ts()}
            for key in {k for k in st.block_state if k[:2] == (ch.id, ts)}:
                del st.block_state[key]  # new blocks: every person's choices start over
            st.touch()
            event = changed_event(st, ch, msg, previous)
        self._echo(event)
