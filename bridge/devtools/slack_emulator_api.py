"""Web API side of the Slack emulator: the methods agentbridge calls, answered like Slack does.

Requests are POSTs (slack_sdk sends every method as POST: form-encoded, or JSON for chat.*) or
GETs with a query string (the async client), to `/api/<method>`; the token comes from
`Authorization: Bearer` or a `token` parameter. Errors are `{"ok": false, "error": ...}` with
HTTP 200, as on Slack, so slack_sdk raises `SlackApiError` for them; injected faults answer 429
(with `Retry-After`), 5xx, or reset the TCP connection before any response.
The bot's own posts are echoed back as Events API events, because on real Slack the bridge
receives its own messages and must ignore them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bridge.devtools.slack_emulator_socket import (
    SocketHub,
    abort_with_reset,
    changed_event,
    deleted_event,
    join_channel,
    message_event,
)
from bridge.devtools.slack_emulator_state import (
    ApiError,
    Channel,
    Fault,
    Json,
    UploadedFile,
    WorkspaceState,
    cursor_decode,
    cursor_encode,
    flag,
    int_param,
    json_param,
    parse_metadata,
    public,
    thread_root,
    top_level,
    ts_key,
)

SCOPES = "app_mentions:read,channels:history,channels:join,channels:read,chat:write,commands,"
SCOPES += "files:write,groups:history,groups:read,reactions:write,users:read"
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})


class WebApi:
    """The aiohttp routes for `/api/*`, file uploads and slash-command response URLs.

    A Slack method `a.bMethod` is served by `api_a_bMethod`, so the table cannot drift.
    """

    def __init__(self, state: WorkspaceState, hub: SocketHub, echo_bot_messages: bool = True):
        self.state = state
        self.hub = hub
        self.echo_bot_messages = echo_bot_messages
        self.http_base = ""  # http://127.0.0.1:PORT/, set once the port is known

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self.handle)
        app.router.add_post("/upload/{file_id}", self.handle_upload)
        app.router.add_post("/response/{rid}", self.handle_response_url)

    # -- HTTP plumbing -------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params: Json = dict(request.query)
        if request.body_exists:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    return self._reply({"ok": False, "error": "invalid_json"})
                params.update(body if isinstance(body, dict) else {})
            else:
                form = await request.post()
                params.update({k: v for k, v in form.items() if isinstance(v, str)})
        token = params.pop("token", None)
        if (bearer := request.headers.get("Authorization", "")).startswith("Bearer "):
            token = bearer.removeprefix("Bearer ")
        with self.state.lock:
            self.state.call_log.append((method, copy.deepcopy(params)))
            self.state.touch()
        impl: Callable[[Json], Json] | None = getattr(self, "api_" + method.replace(".", "_"), None)
        if impl is None:
            return self._reply({"ok": False, "error": "unknown_method"})
        fault = self.state.take_fault(method)
        if fault is not None and not fault.after:
            return self._fault(request, fault)
        try:
            self._check_token(method, token)
            result = impl(params)
        except ApiError as err:
            return self._reply({"ok": False, "error": err.error, **err.extra})
        if fault is not None:
            return self._fault(request, fault)
        return self._reply({"ok": True, **result})

    def _fault(self, request: web.Request, fault: Fault) -> web.Response:
        if fault.status == 0:
            abort_with_reset(request.transport)
            return web.Response(status=500)
        headers = {"Retry-After": str(fault.retry_after)} if fault.status == 429 else {}
        return self._reply({"ok": False, "error": fault.error}, fault.status, headers)

    def _reply(self, body: Json, status: int = 200, headers: Json | None = None) -> web.Response:
        hdrs = {"X-OAuth-Scopes": SCOPES, **(headers or {})}
        return web.json_response(body, status=status, headers=hdrs)

    def _check_token(self, method: str, token: str | None) -> None:
        if not token:
            raise ApiError("not_authed")
        if token not in (self.state.bot_token, self.state.app_token):
            raise ApiError("invalid_auth")
        if (token == self.state.app_token) != (method in APP_TOKEN_METHODS):
            raise ApiError("not_allowed_token_type")

    async def handle_upload(self, request: web.Request) -> web.Response:
        """Step two of files_upload_v2: the raw bytes POSTed to the issued `upload_url`."""
        data = await request.read()
        with self.state.lock:
            f = self.state.files.get(request.match_info["file_id"])
            if f is None:
                return web.Response(status=404, text="file not found")
            f.content = data
            self.state.touch()
        return web.Response(text=f"OK - {len(data)}")

    async def handle_response_url(self, request: web.Request) -> web.Response:
        rid = request.match_info["rid"]
        body = await request.json()  # slack_sdk's WebhookClient (bolt's `respond`) sends JSON
        with self.state.lock:
            channel_id = self.state.response_urls.get(rid)
            if channel_id is None:
                return web.Response(status=404, text="no such response_url")
            self.state.responses.append({"source": "response_url", "id": rid, "body": body})
            self.state.touch()
        if isinstance(body, dict) and body.get("response_type") == "in_channel":
            self.post_as_bot(channel_id, {"text": str(body.get("text", ""))}, check_member=False)
        return web.json_response({"ok": True})

    # -- helpers -------------------------------------------------------------------------

    def _member_channel(self, ref: Any) -> Channel:
        ch = self.state.channel(str(ref or ""))
        if self.state.bot_user_id not in ch.members:
            raise ApiError("not_in_channel")
        return ch

    def _bot_message(self, text: str) -> Json:
        """A message as the app's bot user posts it: `bot_id` and `app_id`, no subtype."""
        st = self.state
        msg: Json = {"type": "message", "ts": st.new_ts(), "user": st.bot_user_id}
        msg.update(bot_id=st.bot_id, app_id=st.app_id, team=st.team_id, text=text)
        name = st.users[st.bot_user_id].name
        msg["bot_profile"] = {"id": st.bot_id, "app_id": st.app_id, "name": name}
        return msg

    @staticmethod
    def _apply_content(msg: Json, params: Json) -> None:
        """Blocks and attachments are stored verbatim (never rendered); metadata validated."""
        for key in ("blocks", "attachments"):
            if params.get(key):
                msg[key] = json_param(params[key])
        metadata = parse_metadata(params.get("metadata"))
        if metadata is not None:
            msg["metadata"] = metadata

    def _echo(self, event: Json) -> None:
        if self.echo_bot_messages:
            self.hub.emit_event(event)

    def post_as_bot(self, channel: Any, params: Json, check_member: bool = True) -> Json:
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

    # -- methods -------------------------------------------------------------------------

    def api_auth_test(self, params: Json) -> Json:
        st = self.state
        return dict(
            url=self.http_base, team=st.team_name, user=st.users[st.bot_user_id].name,
            team_id=st.team_id, user_id=st.bot_user_id, bot_id=st.bot_id,
            is_enterprise_install=False,
        )  # fmt: skip

    def api_apps_connections_open(self, params: Json) -> Json:
        return {"url": self.hub.issue_url()}

    def api_chat_postMessage(self, params: Json) -> Json:
        return self.post_as_bot(params.get("channel"), params)

    def api_chat_update(self, params: Json) -> Json:
        st = self.state
        with st.lock:
            ch = st.channel(str(params.get("channel") or ""))
            msg = st.message(ch, str(params.get("ts") or ""))
            if msg.get("bot_id") != st.bot_id:
                raise ApiError("cant_update_message")
            previous = copy.deepcopy(msg)
            if "text" in params:
                msg["text"] = str(params["text"] or "")
            self._apply_content(msg, params)
            msg["edited"] = {"user": st.bot_user_id, "ts": st.new_ts()}
            st.touch()
            event = changed_event(st, ch, msg, previous)
            out = {"channel": ch.id, "ts": msg["ts"], "text": msg["text"]}
            out["message"] = public(msg, True)
        self._echo(event)
        return out

    def api_chat_delete(self, params: Json) -> Json:
        st = self.state
        with st.lock:
            ch = st.channel(str(params.get("channel") or ""))
            msg = st.message(ch, str(params.get("ts") or ""))
            if msg.get("bot_id") != st.bot_id:
                raise ApiError("cant_delete_message")
            st.remove_message(ch, msg["ts"])
            event = deleted_event(st, ch, msg)
        self._echo(event)
        return {"channel": ch.id, "ts": msg["ts"]}

    def api_chat_postEphemeral(self, params: Json) -> Json:
        st = self.state
        with st.lock:
            ch = self._member_channel(params.get("channel"))
            user = str(params.get("user") or "")
            st.user(user)
            if user not in ch.members:
                raise ApiError("user_not_in_channel")
            ts = st.new_ts()
            record: Json = {"channel": ch.id, "user": user, "text": str(params.get("text") or "")}
            record.update(thread_ts=params.get("thread_ts"), message_ts=ts)
            if params.get("blocks"):
                record["blocks"] = json_param(params["blocks"])
            st.ephemerals.append(record)
            st.touch()
        return {"message_ts": ts}

    def api_conversations_list(self, params: Json) -> Json:
        st = self.state
        types = str(params.get("types") or "public_channel").split(",")
        limit = min(max(int_param(params, "limit", 100), 1), 1000)
        offset = int(cursor_decode(params.get("cursor"), "offset") or 0)
        with st.lock:
            chans = [
                c.to_api(st.bot_user_id)
                for c in st.channels.values()
                if ("private_channel" if c.is_private else "public_channel") in types
            ]
        more = offset + limit < len(chans)
        next_cursor = cursor_encode("offset", offset + limit) if more else ""
        page = chans[offset : offset + limit]
        return {"channels": page, "response_metadata": {"next_cursor": next_cursor}}

    def api_conversations_info(self, params: Json) -> Json:
        with self.state.lock:
            ch = self.state.channel(str(params.get("channel") or ""))
            return {"channel": ch.to_api(self.state.bot_user_id)}

    def api_conversations_join(self, params: Json) -> Json:
        st = self.state
        ch = st.channel(str(params.get("channel") or ""))
        if ch.is_private:
            raise ApiError("method_not_supported_for_channel_type")
        joined = join_channel(st, self.hub, st.bot_user_id, ch)
        out: Json = {"channel": ch.to_api(st.bot_user_id)}
        if joined is None:
            out["warning"] = "already_in_channel"
        return out

    def _page(self, msgs: list[Json], params: Json, newest_first: bool) -> Json:
        """Slack's time-window paging: `oldest`/`latest` (exclusive unless `inclusive`),
        `limit`, and a cursor continuing after the last ts returned."""
        oldest, latest = ts_key(params.get("oldest") or 0), ts_key(params.get("latest") or 1e11)
        inclusive = flag(params.get("inclusive"))

        def in_range(ts: str) -> bool:
            t = ts_key(ts)
            return oldest <= t <= latest if inclusive else oldest < t < latest

        limit = min(max(int_param(params, "limit", 100), 1), 1000)
        after = cursor_decode(params.get("cursor"), "next_ts")
        picked = sorted((m for m in msgs if in_range(m["ts"])), key=lambda m: ts_key(m["ts"]))
        if newest_first:
            picked.reverse()
        if after is not None:
            cut = ts_key(after)
            sign = -1 if newest_first else 1
            picked = [m for m in picked if (ts_key(m["ts"]) - cut) * sign > 0]
        page, more = picked[:limit], len(picked) > limit
        with_meta = flag(params.get("include_all_metadata"))
        next_cursor = cursor_encode("next_ts", page[-1]["ts"]) if more else ""
        messages = [public(m, with_meta) for m in page]
        return {
            "messages": messages,
            "has_more": more,
            "response_metadata": {"next_cursor": next_cursor},
        }

    def api_conversations_history(self, params: Json) -> Json:
        with self.state.lock:
            ch = self._member_channel(params.get("channel"))
            top = [m for m in ch.messages if top_level(m)]
            return {**self._page(top, params, newest_first=True), "pin_count": 0}

    def api_conversations_replies(self, params: Json) -> Json:
        with self.state.lock:
            ch = self._member_channel(params.get("channel"))
            root = thread_root(ch, params.get("ts") or "")
            return self._page(self.state.thread_of(ch, root), params, newest_first=False)

    def _react(self, params: Json, kind: str) -> Json:
        """reactions.add/remove by the bot; Slack echoes them as reaction_* events."""
        st = self.state
        with st.lock:
            ch = st.channel(str(params.get("channel") or ""))
            ts, name = str(params.get("timestamp") or ""), str(params.get("name") or "").strip(":")
            if not name:
                raise ApiError("invalid_name")
            author = st.message(ch, ts).get("user")
            change = st.add_reaction if kind == "reaction_added" else st.remove_reaction
            change(ch, ts, name, st.bot_user_id)
            event = {"type": kind, "user": st.bot_user_id, "reaction": name, "item_user": author}
            event.update(item={"type": "message", "channel": ch.id, "ts": ts})
            event["event_ts"] = st.new_ts()
        self._echo(event)
        return {}

    def api_reactions_add(self, params: Json) -> Json:
        return self._react(params, "reaction_added")

    def api_reactions_remove(self, params: Json) -> Json:
        return self._react(params, "reaction_removed")

    def api_users_info(self, params: Json) -> Json:
        with self.state.lock:
            user = self.state.user(str(params.get("user") or ""))
            return {"user": user.to_api(self.state.team_id)}

    def api_files_getUploadURLExternal(self, params: Json) -> Json:
        filename = str(params.get("filename") or "")
        length = int_param(params, "length", 0)
        if not filename or length <= 0:
            raise ApiError("invalid_arguments")
        with self.state.lock:
            fid = self.state.new_id("F")
            self.state.files[fid] = UploadedFile(fid, filename, length)
            self.state.touch()
        return {"upload_url": f"{self.http_base}upload/{fid}", "file_id": fid}

    def api_files_completeUploadExternal(self, params: Json) -> Json:
        """Step three of files_upload_v2: share the uploaded files, as one message."""
        st = self.state
        items = json_param(params.get("files") or "[]")
        if not isinstance(items, list) or not items:
            raise ApiError("invalid_arguments")
        channel = params.get("channel_id") or str(params.get("channels") or "").split(",")[0]
        with st.lock:
            ch = self._member_channel(channel) if channel else None
            files: list[UploadedFile] = []
            for item in items:
                f = st.files.get(str(item.get("id")))
                if f is None or f.content is None:
                    raise ApiError("file_not_found")
                f.title = item.get("title") or f.filename
                files.append(f)
            if ch is None:
                return {"files": [f.to_api(self.http_base) for f in files]}
            for f in files:
                f.channels.append(ch.id)
            msg = self._bot_message(str(params.get("initial_comment") or ""))
            msg.update(files=[f.to_api(self.http_base) for f in files], upload=True)
            if params.get("thread_ts"):
                msg["thread_ts"] = thread_root(ch, params["thread_ts"])
            st.store_message(ch, msg)
            event = message_event(ch, msg, subtype="file_share")
        self._echo(event)
        return {"files": [f.to_api(self.http_base) for f in files]}
