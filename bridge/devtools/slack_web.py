"""A small web page on the Slack emulator, so a person can use the offline demo like Slack.

`agentbridge demo` runs the real runner against the loopback emulator; this page is the human's
side of it: the channels, each message with its thread and reactions, and a box that posts *as a
human user* through `SlackEmulator.post_as_user`, so a message typed here reaches the runner by
the same Socket Mode event path as one typed in real Slack. Block Kit messages show their
buttons, checkboxes and menus, and using them goes through `SlackEmulator.click`; the person
picked in "post as" also sees their ephemeral messages and the modals the app opened for them.

Routes (added by `SlackEmulator(web_ui=True)`, or `add_web_routes` on any aiohttp app):

- ``GET /`` the page (``slack_web.html``: plain HTML and JS, no build step, no network);
- ``GET /web/state`` the workspace as JSON, threads nested under their parents;
- ``POST /web/post`` ``{user, channel, text, thread_ts?}`` posts as that human;
- ``POST /web/action`` ``{user, channel, ts, action_id, block_id?, value?, selected_options?}``
  uses a button, checkbox or menu of a message: `SlackEmulator.click`, the path tests use;
- ``POST /web/view`` ``{user, view_id, values}`` submits a modal (`SlackEmulator.submit_view`),
  ``POST /web/view_close`` ``{user, view_id}`` dismisses it;
- ``GET /web/events`` Server-Sent Events: one ``data: <version>`` whenever the state changes;
- ``GET /web/files/{id}`` an uploaded file's bytes (long outputs go to Slack as files).

The agents behind this page run with their permission prompts off, so a post is as good as a
shell command: every route checks that the request's ``Host`` is a loopback name (no DNS
rebinding) and posts must be same-origin JSON (no cross-site form posts from another tab).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from aiohttp import web

from bridge.devtools.slack_emulator_model import ApiError, Json, top_level
from bridge.devtools.slack_emulator_state import WorkspaceState

if TYPE_CHECKING:
    from bridge.devtools.slack_emulator import SlackEmulator

__all__ = ["EMOJI", "add_web_routes", "snapshot"]

PAGE = Path(__file__).with_name("slack_web.html")
POLL_SECONDS = 0.2
"""How often an open event stream compares the state's version: cheap, and no hook is needed
in the emulator (its condition variable only wakes threads that are already waiting)."""
KEEPALIVE_SECONDS = 15.0
MAX_TEXT = 40_000
"""Slack's own limit for a message's text."""
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}

EMOJI = {
    "eyes": "👀", "white_check_mark": "✅", "heavy_check_mark": "✔️", "warning": "⚠️",
    "x": "❌", "hourglass": "⌛", "hourglass_flowing_sand": "⏳", "gear": "⚙️",
    "robot_face": "🤖", "thumbsup": "👍", "+1": "👍", "thumbsdown": "👎", "-1": "👎",
    "tada": "🎉", "rocket": "🚀", "fire": "🔥", "memo": "📝", "bulb": "💡", "wrench": "🔧",
    "hammer_and_wrench": "🛠️", "stop_sign": "🛑", "no_entry": "⛔", "rotating_light": "🚨",
    "arrows_counterclockwise": "🔄", "repeat": "🔁", "zzz": "💤", "sleeping": "😴",
    "speech_balloon": "💬", "question": "❓", "exclamation": "❗", "heart": "❤️",
    "white_circle": "⚪", "large_green_circle": "🟢", "red_circle": "🔴",
    "large_yellow_circle": "🟡", "large_blue_circle": "🔵", "clipboard": "📋",
    "package": "📦", "lock": "🔒", "key": "🔑", "mag": "🔍", "pencil2": "✏️", "inbox_tray": "📥",
    "outbox_tray": "📤", "page_facing_up": "📄", "scroll": "📜", "thinking_face": "🤔",
    "smile": "😄", "slightly_smiling_face": "🙂", "wave": "👋", "skull": "💀", "boom": "💥",
    "stopwatch": "⏱️", "alarm_clock": "⏰", "moneybag": "💰", "broom": "🧹", "keyboard": "⌨️",
    "thought_balloon": "💭", "raised_hand": "✋", "checkered_flag": "🏁", "compression": "🗜️",
    "bust_in_silhouette": "👤", "busts_in_silhouette": "👥", "calendar": "📆",
}  # fmt: skip
"""Slack emoji names the runner uses (and a few common ones) as the characters to show."""


def add_web_routes(app: web.Application, emulator: SlackEmulator) -> None:
    """Register the page and its JSON/SSE endpoints on `app` (before it starts)."""
    view = _WebView(emulator)
    app.router.add_get("/", view.page)
    app.router.add_get("/web/state", view.state)
    app.router.add_post("/web/post", view.post)
    app.router.add_post("/web/action", view.action)
    app.router.add_post("/web/view", view.submit_view)
    app.router.add_post("/web/view_close", view.close_view)
    app.router.add_get("/web/events", view.events)
    app.router.add_get("/web/files/{file_id}", view.file)
    app.on_shutdown.append(view.close_streams)


# -- the JSON the page renders ------------------------------------------------------------


def _names(st: WorkspaceState) -> dict[str, str]:
    return {uid: u.display_name or u.name for uid, u in st.users.items()}


def _message(msg: Json, names: dict[str, str]) -> Json:
    """One message as the page needs it: who (bot or human, by name), text, reactions, files."""
    is_bot = bool(msg.get("bot_id"))
    author = msg.get("user") or ""
    name = (msg.get("bot_profile") or {}).get("name") if is_bot else None
    reactions = [
        {
            "name": r["name"],
            "emoji": EMOJI.get(r["name"]),
            "count": len(r["users"]),
            "users": [names.get(u, u) for u in r["users"]],
        }
        for r in msg.get("reactions", [])
    ]
    files = [
        {"id": f.get("id"), "name": f.get("name"), "size": f.get("size")}
        for f in msg.get("files", [])
    ]
    return {
        "ts": msg["ts"],
        "thread_ts": msg.get("thread_ts"),
        "user": author,
        "author": name or names.get(author, author or "?"),
        "is_bot": is_bot,
        "subtype": msg.get("subtype"),
        "text": str(msg.get("text") or ""),
        "edited": bool(msg.get("edited")),
        "reactions": reactions,
        "files": files,
        "blocks": msg.get("blocks") or [],
    }


def snapshot(st: WorkspaceState) -> Json:
    """The whole workspace for the page: channels with top-level messages, each carrying its
    thread replies (oldest first), plus every user's name and which users are humans."""
    with st.lock:
        names = _names(st)
        channels = []
        for ch in st.channels.values():
            replies: dict[str, list[Json]] = {}
            for m in ch.messages:
                root = m.get("thread_ts")
                if root and root != m["ts"]:
                    replies.setdefault(root, []).append(_message(m, names))
            top = [  # a broadcast reply shows in its thread and in the channel, as in Slack
                {**_message(m, names), "replies": replies.get(m["ts"], [])}
                for m in ch.messages
                if top_level(m)
            ]
            ephemerals = [
                {k: e.get(k) for k in ("user", "text", "message_ts", "thread_ts", "source")}
                | {"blocks": e.get("blocks") or []}
                for e in st.ephemerals
                if e["channel"] == ch.id
            ]
            state: dict[str, Json] = {}  # message ts -> user -> that user's state.values
            for (cid, ts, user), values in st.block_state.items():
                if cid == ch.id:
                    state.setdefault(ts, {})[user] = values
            channels.append(
                {"id": ch.id, "name": ch.name, "is_private": ch.is_private}
                | {"members": sorted(ch.members), "messages": top, "ephemerals": ephemerals}
                | {"block_state": state}
            )
        humans = [
            {"id": u.id, "name": u.name, "display_name": u.display_name}
            for u in st.users.values()
            if not u.is_bot
        ]
        bot = st.users[st.bot_user_id]
        return {
            "team": st.team_name,
            "bot": {"id": bot.id, "name": bot.display_name},
            "users": humans,
            "names": names,
            "channels": channels,
            "views": [_view(v) for v in st.views.values() if v["state"] != "closed"],
            "emoji": EMOJI,
        }


def _view(record: Json) -> Json:
    """An open modal as the page draws it, for the person it was opened for."""
    view = record["view"]
    keys = ("id", "hash", "title", "blocks", "submit", "close")
    return {k: view.get(k) for k in keys} | {
        "user": record["user"],
        "state": record["state"],
        "errors": record["errors"] or {},
    }


def version_of(state: Json) -> str:
    """A short digest of what the page shows: equal digests, nothing to redraw."""
    blob = json.dumps(state, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.blake2b(blob, digest_size=8).hexdigest()


# -- HTTP ---------------------------------------------------------------------------------


def _host_name(netloc: str) -> str:
    return (urlsplit(f"//{netloc}").hostname or "").lower()


def _refuse(request: web.Request, extra_hosts: set[str]) -> web.Response | None:
    """A 403 unless the request comes to a loopback name (DNS rebinding) and, for a post, from
    this very page (a cross-site form or fetch from another tab would steer the agents)."""
    allowed = LOOPBACK | extra_hosts
    if _host_name(request.host) not in allowed:
        return web.json_response({"ok": False, "error": "host_not_allowed"}, status=403)
    if request.method == "POST":
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc.lower() != request.host.lower():
            return web.json_response({"ok": False, "error": "cross_origin"}, status=403)
        if request.content_type != "application/json":
            return web.json_response({"ok": False, "error": "json_required"}, status=415)
    return None


class _WebView:
    """The handlers; state reads go through the emulator's lock, posts through its helpers."""

    def __init__(self, emulator: SlackEmulator) -> None:
        self.emulator = emulator
        self.hosts = {emulator.host.lower()}
        self.streams: set[asyncio.Task[object]] = set()
        """Open event streams: they never end on their own, so stopping must end them."""

    async def page(self, request: web.Request) -> web.StreamResponse:
        if (refused := _refuse(request, self.hosts)) is not None:
            return refused
        html = await asyncio.to_thread(PAGE.read_text, encoding="utf-8")
        headers = {"Cache-Control": "no-store", "Content-Security-Policy": _CSP}
        return web.Response(text=html, content_type="text/html", headers=headers)

    async def state(self, request: web.Request) -> web.Response:
        if (refused := _refuse(request, self.hosts)) is not None:
            return refused
        data = snapshot(self.emulator.state)
        data["version"] = version_of(data)
        return web.json_response(data, headers={"Cache-Control": "no-store"})

    async def _body(self, request: web.Request) -> Json | web.Response:
        """The JSON object a page post carries, or the refusal to answer with."""
        if (refused := _refuse(request, self.hosts)) is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return _bad("invalid_json")
        return body if isinstance(body, dict) else _bad("invalid_json")

    async def post(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        user, channel, text = body.get("user"), body.get("channel"), body.get("text")
        thread_ts = body.get("thread_ts") or None
        if not (isinstance(user, str) and isinstance(channel, str) and isinstance(text, str)):
            return _bad("user, channel and text are required strings")
        if not text.strip():
            return _bad("no_text")
        if len(text) > MAX_TEXT:
            return _bad("msg_too_long")
        if thread_ts is not None and not isinstance(thread_ts, str):
            return _bad("thread_ts must be a string")
        wire = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        try:  # Slack's own client sends `& < >` as entities; the runner expects that
            return web.json_response(self._post(user, channel, wire, thread_ts))
        except ApiError as err:
            return _bad(err.error)

    def _human_in(self, user: str, channel: str) -> str:
        """The channel's id, after making sure `user` is a human and a member: one who is not
        joins first, as Slack's client offers. Nothing here blocks: events are queued."""
        emu, st = self.emulator, self.emulator.state
        with st.lock:
            if st.user(user).is_bot:
                raise ApiError("cannot_post_as_bot")
            ch = st.channel(channel)
            member = user in ch.members
        if not member:
            emu.join(user, ch.id)
        return ch.id

    def _post(self, user: str, channel: str, text: str, thread_ts: str | None) -> Json:
        cid = self._human_in(user, channel)
        ts = self.emulator.post_as_user(user, cid, text, thread_ts)
        return {"ok": True, "channel": cid, "ts": ts}

    async def action(self, request: web.Request) -> web.Response:
        """A click on a Block Kit element: the same `click` a test calls."""
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        fields = [body.get(k) for k in ("user", "channel", "ts", "action_id")]
        if not all(isinstance(f, str) and f for f in fields):
            return _bad("user, channel, ts and action_id are required strings")
        user, channel, ts, action_id = (str(f) for f in fields)
        selected = body.get("selected_options")
        if selected is not None and not isinstance(selected, list):
            return _bad("selected_options must be a list")
        try:
            cid = self._human_in(user, channel)
            self.emulator.click(
                user, cid, ts, action_id, body.get("value"), selected, block_id=body.get("block_id")
            )
        except ApiError as err:
            return _bad(err.error)
        except (LookupError, ValueError) as err:
            return _bad(str(err))
        return web.json_response({"ok": True})

    async def submit_view(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        user, view_id, values = body.get("user"), body.get("view_id"), body.get("values", {})
        if not (isinstance(user, str) and isinstance(view_id, str) and isinstance(values, dict)):
            return _bad("user and view_id are required strings, values an object")
        try:
            self.emulator.submit_view(user, view_id, values)
        except (ApiError, LookupError, ValueError) as err:
            return _bad(err.error if isinstance(err, ApiError) else str(err))
        return web.json_response({"ok": True})

    async def close_view(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        user, view_id = body.get("user"), body.get("view_id")
        if not (isinstance(user, str) and isinstance(view_id, str)):
            return _bad("user and view_id are required strings")
        try:
            self.emulator.close_view(user, view_id)
        except (ApiError, LookupError) as err:
            return _bad(err.error if isinstance(err, ApiError) else str(err))
        return web.json_response({"ok": True})

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: the current version at once, then each new one. The browser's
        `EventSource` reconnects by itself, so a dropped stream only delays a redraw."""
        if (refused := _refuse(request, self.hosts)) is not None:
            return refused
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await resp.prepare(request)
        last, quiet_since = "", time.monotonic()
        task = asyncio.current_task()
        assert task is not None
        self.streams.add(task)
        try:
            await resp.write(b"retry: 1000\n\n")
            # aiohttp does not cancel a handler whose client left: watch the transport.
            while request.transport is not None and not request.transport.is_closing():
                current = version_of(snapshot(self.emulator.state))
                if current != last:
                    await resp.write(f"data: {current}\n\n".encode())
                    last, quiet_since = current, time.monotonic()
                elif time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
                    await resp.write(b": keepalive\n\n")
                    quiet_since = time.monotonic()
                await asyncio.sleep(POLL_SECONDS)
        except ConnectionResetError:
            pass  # the tab closed between two checks
        finally:
            self.streams.discard(task)
        return resp

    async def close_streams(self, _app: web.Application) -> None:
        """On shutdown, before aiohttp closes connections: end every open stream now, so no
        handler is left pending when the emulator's loop closes."""
        streams = list(self.streams)
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)

    async def file(self, request: web.Request) -> web.Response:
        if (refused := _refuse(request, self.hosts)) is not None:
            return refused
        st = self.emulator.state
        with st.lock:
            f = st.files.get(request.match_info["file_id"])
            content, name = (f.content, f.filename) if f is not None else (None, "")
        if content is None:
            return web.Response(status=404, text="no such file")
        disposition = "inline; filename*=UTF-8''" + quote(name, safe="")
        headers = {"Content-Disposition": disposition, "Cache-Control": "no-store"}
        return web.Response(
            body=content, content_type="text/plain", charset="utf-8", headers=headers
        )


_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
)
"""The page loads nothing from anywhere: inline script and style, fetches to itself only."""


def _bad(error: str, status: int = 400) -> web.Response:
    return web.json_response({"ok": False, "error": error}, status=status)
