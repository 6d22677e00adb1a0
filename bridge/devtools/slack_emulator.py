"""A loopback Slack for tests and `agentbridge demo`: Web API, Socket Mode, a scripted workspace.

Tests never touch real Slack; they point the real slack_sdk / slack_bolt clients at this emulator
(`WebClient(token=emu.bot_token, base_url=emu.api_url)`, the Socket Mode client picks up the
websocket URL from `apps.connections.open`) and act as humans through the helpers here. It runs
either on its own thread and loop (`with SlackEmulator() as emu:` in sync tests) or on the caller's
loop (`await emu.astart()`). Faults Slack really produces (429s, 5xx, resets, refused or dropped
sockets, redelivered events) can be injected so the bridge's recovery paths get exercised.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from aiohttp import web

from bridge.devtools.slack_emulator_api import WebApi
from bridge.devtools.slack_emulator_socket import (
    SocketHub,
    changed_event,
    deleted_event,
    join_channel,
    message_event,
)
from bridge.devtools.slack_emulator_state import (
    Channel,
    Fault,
    Json,
    WorkspaceState,
    thread_root,
    top_level,
)
from bridge.devtools.slack_web import add_web_routes, text_summary

__all__ = ["SlackEmulator"]

T = TypeVar("T")


class SlackEmulator:
    """One emulated workspace with one app (bot user `UBOT…`, bot id `BBOT…`).

    `ack_timeout` / `max_retries` follow Slack's Events API redelivery (3 s, 3 retries);
    `disconnect_grace` is how long a socket stays open after a `disconnect` message.
    """

    def __init__(
        self,
        *,
        ack_timeout: float = 3.0,
        max_retries: int = 3,
        disconnect_grace: float = 1.0,
        echo_bot_messages: bool = True,
        app_mentions: bool = True,
        team_name: str = "Emulator",
        bot_name: str = "agentbridge",
        host: str = "127.0.0.1",
        port: int = 0,
        web_ui: bool = False,
    ) -> None:
        self.state = WorkspaceState(team_name=team_name, bot_name=bot_name)
        self.hub = SocketHub(self.state, ack_timeout, max_retries, disconnect_grace)
        self.api = WebApi(self.state, self.hub, echo_bot_messages)
        self.app_mentions = app_mentions
        st = self.state  # identities are fixed for the emulator's life
        self.bot_token, self.app_token, self.team_id = st.bot_token, st.app_token, st.team_id
        self.bot_user_id, self.bot_id, self.app_id = st.bot_user_id, st.bot_id, st.app_id
        self.host, self.port, self.web_ui = host, port, web_ui  # port 0: any free port
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- identity ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def api_url(self) -> str:
        """The `base_url` for `WebClient` / `AsyncWebClient`, with its trailing slash."""
        return f"{self.base_url}api/"

    @property
    def web_url(self) -> str:
        """The human page (`web_ui=True`): channels, threads, reactions, a box to post."""
        return self.base_url

    # -- lifecycle -----------------------------------------------------------------------

    async def astart(self) -> SlackEmulator:
        """Serve on the running loop, on `port` (a free loopback port when 0)."""
        self._runner = web.AppRunner(
            self._build_app(), access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.api.http_base = self.base_url
        self.hub.bind(f"ws://{self.host}:{self.port}/socket")
        return self

    def _build_app(self) -> web.Application:
        app = web.Application()
        self.api.add_routes(app)
        app.router.add_get("/socket", self.hub.handle_ws)
        if self.web_ui:
            add_web_routes(app, self)
        return app

    async def astop(self) -> None:
        await self.hub.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackEmulator:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.astop()

    def start(self) -> SlackEmulator:
        """Serve from a daemon thread with its own loop, for synchronous tests."""
        loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="slack-emulator", daemon=True)
        self._loop = loop
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.astart(), loop).result(30)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.astop(), loop).result(30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)
            loop.close()
            self._loop = self._thread = None

    def __enter__(self) -> SlackEmulator:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- workspace setup -----------------------------------------------------------------

    def add_user(self, name: str, display_name: str | None = None) -> str:
        """Create a human; returns its user id (`U0001EMU`…)."""
        return self.state.add_user(name, display_name)

    def add_channel(
        self,
        name: str,
        members: list[str] | None = None,
        *,
        bot_member: bool = True,
        is_private: bool = False,
    ) -> str:
        """Create a channel (`C0001EMU`…, `G…` if private); the bot is a member unless told."""
        return self.state.add_channel(name, list(members or []), bot_member, is_private)

    def join(self, user_id: str, channel: str) -> str | None:
        """`user_id` joins: `channel_join` message + `member_joined_channel` event."""
        with self.state.lock:
            ch = self.state.channel(channel)
        return join_channel(self.state, self.hub, user_id, ch)

    # -- acting as a human ---------------------------------------------------------------

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
        """A human runs a slash command; returns the payload sent (incl. `response_url`)."""
        st = self.state
        with st.lock:
            ch, user = st.channel(channel), st.user(user_id)
            rid = uuid.uuid4().hex
            st.response_urls[rid] = ch.id
            payload: Json = dict(
                token="emulator-verification-token", team_id=st.team_id, team_domain="emulator",
                channel_id=ch.id, channel_name=ch.name, user_id=user.id, user_name=user.name,
                command=command, text=text, api_app_id=st.app_id, is_enterprise_install="false",
                response_url=f"{self.base_url}response/{rid}",
                trigger_id=f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{rid[:16]}",
            )  # fmt: skip
        self.hub.emit("slash_commands", payload, accepts_response_payload=True)
        return copy.deepcopy(payload)

    def send_event(self, event: Json) -> str:
        """Deliver an arbitrary Events API event; returns its `event_id`."""
        return str(self.hub.emit_event(copy.deepcopy(event)).event_id)

    def send_interactive(self, payload: Json, accepts_response_payload: bool = False) -> None:
        """Deliver an `interactive` envelope (block_actions, view_submission, …)."""
        self.hub.emit("interactive", copy.deepcopy(payload), accepts_response_payload)

    def redeliver_last(self) -> str:
        """Send the last Events API request again, same `event_id`, `retry_attempt` + 1,
        even if it was acked: Slack does this when an ack is lost. Returns the event_id."""
        with self.state.lock:
            events = [d for d in self.state.deliveries.values() if d.kind == "events_api"]
            if not events:
                raise LookupError("no Events API delivery to redeliver")
            last = events[-1]
        self.hub.submit(last.key, forced=True)
        return str(last.event_id)

    # -- socket and fault control --------------------------------------------------------

    def disconnect(
        self, reason: str = "refresh_requested", close_after: float | None = None
    ) -> None:
        """Send `{"type": "disconnect", "reason": …}` to every socket, close them later."""
        self.hub.run_soon(self.hub.send_disconnect(reason, close_after))

    def drop_sockets(self) -> None:
        """Kill every Socket Mode connection abruptly (TCP reset, no close frame)."""
        self.hub.run_soon(self.hub.drop_all())

    def connection_count(self) -> int:
        return self.hub.open_count()

    def inject(
        self,
        method: str,
        status: int = 429,
        retry_after: int = 1,
        times: int = 1,
        error: str | None = None,
        after: bool = False,
    ) -> None:
        """Make the next `times` calls of `method` fail: 429 with `Retry-After`, a 5xx,
        `status=200` with `{"ok": false, "error": error}`, or `status=0` for a TCP reset.
        With `after`, the call takes effect first and only its answer fails."""
        default = "ratelimited" if status == 429 else "internal_error"
        self.state.add_fault(method, Fault(status, retry_after, error or default, after), times)

    def fail_connections_open(self, times: int = 1, error: str = "internal_error") -> None:
        """The next `times` `apps.connections.open` calls answer `ok: false`."""
        self.inject("apps.connections.open", status=200, times=times, error=error)

    # -- inspection ----------------------------------------------------------------------

    def messages(self, channel: str, include_threads: bool = True) -> list[Json]:
        """Stored messages, oldest first (metadata included); replies too unless told."""
        with self.state.lock:
            msgs = self.state.channel(channel).messages
            if not include_threads:
                msgs = [m for m in msgs if top_level(m)]
            return copy.deepcopy(msgs)

    def thread(self, channel: str, ts: str) -> list[Json]:
        """The thread rooted at `ts`: parent first, then replies in order."""
        with self.state.lock:
            return copy.deepcopy(self.state.thread_of(self.state.channel(channel), ts))

    def reactions(self, channel: str, ts: str) -> dict[str, list[str]]:
        with self.state.lock:
            msg = self.state.message(self.state.channel(channel), ts)
            return {r["name"]: list(r["users"]) for r in msg.get("reactions", [])}

    def ephemerals(self) -> list[Json]:
        with self.state.lock:
            return copy.deepcopy(self.state.ephemerals)

    def responses(self) -> list[Json]:
        """Slash-command answers: ack payloads and POSTs to `response_url`, in order."""
        with self.state.lock:
            return copy.deepcopy(self.state.responses)

    def files(self) -> list[Json]:
        """Uploaded files with their bytes under `content`."""
        with self.state.lock:
            return [
                {**f.to_api(self.base_url), "content": f.content} for f in self.state.files.values()
            ]

    def calls(self, method: str | None = None) -> list[tuple[str, Json]]:
        """Every Web API call received (faulted ones too), token removed from params."""
        with self.state.lock:
            log = self.state.call_log
            return [copy.deepcopy(c) for c in log if method is None or c[0] == method]

    def deliveries(self, kind: str | None = None) -> list[Json]:
        """Socket Mode requests with their envelope ids, attempts and ack state."""
        with self.state.lock:
            ds = self.state.deliveries.values()
            return [d.summary() for d in ds if kind is None or d.kind == kind]

    def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0, what: str = "") -> T:
        """Poll `predicate()` until truthy, waking on every state change (and every 50 ms for
        outside state); raise TimeoutError describing the workspace.

        The predicate runs *without* the state lock (each inspection method takes it), so it
        may call the emulator over HTTP or wait on the code under test without deadlocking.
        On the emulator's own loop use `await asyncio.to_thread(emu.wait_for, ...)`."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(self.summary(f"timed out after {timeout}s: {what}"))
            with self.state.changed:
                self.state.changed.wait(min(remaining, 0.05))

    def summary(self, headline: str = "Slack emulator state") -> str:
        """A readable dump for failure messages: recent messages, calls, deliveries."""
        return text_summary(self.state, self.connection_count(), headline)
