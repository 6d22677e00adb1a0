"""Web API side of the Slack emulator: the methods agentbridge calls, answered like Slack does.

Requests are POSTs (slack_sdk sends every method as POST: form-encoded, or JSON for chat.*) or
GETs with a query string (the async client), to `/api/<method>`; the token comes from
`Authorization: Bearer` or a `token` parameter. Errors are `{"ok": false, "error": ...}` with
HTTP 200, as on Slack, so slack_sdk raises `SlackApiError` for them; injected faults answer 429
(with `Retry-After`), 5xx, or reset the TCP connection before any response.
Posting methods are rate-limited per channel as on Slack (`slack_emulator_limits`), before
anything else happens; the bot's own posts are echoed back as Events API events. Files, modals
and interactivity live in their own method groups (`slack_emulator_files`, `_views`,
`_interactive`), which `WebApi` combines.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from aiohttp import web

from bridge.devtools import slack_emulator_scopes as slack_scopes
from bridge.devtools.slack_emulator_apibase import check_text
from bridge.devtools.slack_emulator_conns import abort_with_reset
from bridge.devtools.slack_emulator_events import changed_event, deleted_event, join_channel
from bridge.devtools.slack_emulator_files import FilesApi
from bridge.devtools.slack_emulator_interactive import InteractiveApi, add_ephemeral
from bridge.devtools.slack_emulator_limits import NO_TIERS, Limiter
from bridge.devtools.slack_emulator_model import (
    ApiError,
    Fault,
    Json,
    cursor_decode,
    cursor_encode,
    flag,
    int_param,
    public,
    thread_root,
    top_level,
    ts_key,
)
from bridge.devtools.slack_emulator_socket import SocketHub
from bridge.devtools.slack_emulator_state import WorkspaceState
from bridge.devtools.slack_emulator_views import ViewsApi

APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
TOKEN = web.RequestKey("token", str)
"""The token a request carried, kept on the request for its answer's `x-oauth-scopes`."""


class WebApi(FilesApi, InteractiveApi, ViewsApi):
    """The aiohttp routes for `/api/*`, file uploads and downloads, and response URLs.

    A Slack method `a.bMethod` is served by `api_a_bMethod`, so the table cannot drift.
    """

    def __init__(
        self,
        state: WorkspaceState,
        hub: SocketHub,
        echo_bot_messages: bool = True,
        limiter: Limiter | None = None,
    ):
        super().__init__(state, hub, echo_bot_messages)
        self.limiter = limiter or Limiter(
            state.clock, per_channel=None, workspace=None, method_limits=NO_TIERS
        )

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self.handle)
        app.router.add_post("/response/{rid}", self.handle_response_url)
        self.add_file_routes(app)

    # -- HTTP plumbing -------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """One Web API call; every answer names the calling token's scopes, as Slack's do."""
        response = await self._handle(request)
        scopes = slack_scopes.header(self.state, request.get(TOKEN))
        if scopes is not None:
            response.headers["X-OAuth-Scopes"] = scopes
        return response

    async def _handle(self, request: web.Request) -> web.StreamResponse:
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
        request[TOKEN] = str(token or "")
        with self.state.lock:
            self.state.call_log.append((method, copy.deepcopy(params)))
            self.state.touch()
        impl: Callable[[Json], Json] | None = getattr(self, "api_" + method.replace(".", "_"), None)
        if impl is None:
            return self._reply({"ok": False, "error": "unknown_method"})
        channel = self._channel_of(params)
        fault = self.state.take_fault(method, channel)
        if fault is not None and not fault.after:
            return self._fault(request, method, channel, fault)
        try:
            self._check_token(method, token)
            slack_scopes.check(self.state, method, params, str(token))
            limited = self.limiter.check(method, channel)
            if limited is not None:
                return self._ratelimited(method, channel, *limited)
            result = impl(params)
        except ApiError as err:
            return self._reply({"ok": False, "error": err.error, **err.extra})
        if fault is not None:
            return self._fault(request, method, channel, fault)
        return self._reply({"ok": True, **result})

    def _channel_of(self, params: Json) -> str | None:
        """The channel a call names, as an id when it exists (faults and limits are per id)."""
        ref = params.get("channel") or params.get("channel_id")
        ref = ref or str(params.get("channels") or "").split(",")[0]
        if not ref:
            return None
        with self.state.lock:
            try:
                return self.state.channel(str(ref)).id
            except ApiError:
                return str(ref)

    def _ratelimited(
        self, method: str, channel: str | None, scope: str, retry_after: int
    ) -> web.Response:
        with self.state.lock:
            record = {"method": method, "channel": channel, "scope": scope}
            self.state.rate_limited.append({**record, "retry_after": retry_after})
            self.state.touch()
        headers = {"Retry-After": str(retry_after)}
        return self._reply({"ok": False, "error": "ratelimited"}, 429, headers)

    def _fault(
        self, request: web.Request, method: str, channel: str | None, fault: Fault
    ) -> web.Response:
        if fault.status == 0:
            abort_with_reset(request.transport)
            return web.Response(status=500)
        if fault.status == 429:
            return self._ratelimited(method, channel, "injected", fault.retry_after)
        return self._reply({"ok": False, "error": fault.error}, fault.status)

    def _reply(self, body: Json, status: int = 200, headers: Json | None = None) -> web.Response:
        return web.json_response(body, status=status, headers=headers)

    def _check_token(self, method: str, token: str | None) -> None:
        if not token:
            raise ApiError("not_authed")
        if token not in self.state.token_scopes and token != self.state.app_token:
            raise ApiError("invalid_auth")
        if (token == self.state.app_token) != (method in APP_TOKEN_METHODS):
            raise ApiError("not_allowed_token_type")

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
                msg["text"] = check_text(str(params["text"] or ""))
            if "blocks" in params:  # new blocks replace the old; an empty array removes them
                msg.pop("blocks", None)
                for key in [k for k in st.block_state if k[:2] == (ch.id, msg["ts"])]:
                    del st.block_state[key]  # people's choices start over, as in Slack
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
            if not params.get("text") and not params.get("blocks"):
                raise ApiError("no_text")
            ts = add_ephemeral(st, ch, user, params, source="chat.postEphemeral")
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
