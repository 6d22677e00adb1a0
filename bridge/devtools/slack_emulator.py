"""A loopback Slack for tests and `agentbridge demo`: Web API, Socket Mode, a scripted workspace.

Tests never touch real Slack; they point the real slack_sdk / slack_bolt clients at this emulator
(`WebClient(token=emu.bot_token, base_url=emu.api_url)`, the Socket Mode client picks up the
websocket URL from `apps.connections.open`) and act as humans through the helpers here
(`slack_emulator_people`), then look at the result (`slack_emulator_inspect`). It runs either on
its own thread and loop (`with SlackEmulator() as emu:` in sync tests) or on the caller's loop
(`await emu.astart()`). It behaves like Slack where the bridge's correctness depends on it:
every method is rate-limited as Slack's tiers say (429 + `Retry-After`), Socket Mode envelopes
go to one connection at random and unacked events are retried, blocks are checked, and faults Slack
really produces (429s, 5xx, resets, refused or dropped sockets, redelivered events, channels
that answer `not_in_channel` / `channel_not_found`) can be injected so recovery paths get run.
The bot token holds the scopes of `deploy/slack-app-manifest.yaml` and a call without its scope
answers `missing_scope`, as a workspace that installed that manifest would.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType

from aiohttp import web

from bridge.devtools.slack_emulator_api import WebApi
from bridge.devtools.slack_emulator_inspect import Inspection
from bridge.devtools.slack_emulator_limits import (
    NO_TIERS,
    POSTING_LIMIT,
    WORKSPACE_POSTING_LIMIT,
    Limiter,
    RateLimit,
)
from bridge.devtools.slack_emulator_model import Fault
from bridge.devtools.slack_emulator_people import People
from bridge.devtools.slack_emulator_scopes import manifest_scopes
from bridge.devtools.slack_emulator_socket import SocketHub
from bridge.devtools.slack_emulator_state import WorkspaceState
from bridge.devtools.slack_emulator_views import on_view_ack
from bridge.devtools.slack_web import add_web_routes

__all__ = ["CHANNEL_METHODS", "NO_TIERS", "POSTING_LIMIT", "RateLimit", "SlackEmulator"]

CHANNEL_METHODS = (
    "chat.postMessage", "chat.update", "chat.delete", "chat.postEphemeral",
    "files.completeUploadExternal", "reactions.add", "reactions.remove",
    "conversations.history", "conversations.replies", "conversations.info",
    "conversations.join",
)  # fmt: skip
"""The methods `fail_channel` breaks by default: every call that names a channel."""


class SlackEmulator(People, Inspection):
    """One emulated workspace with one app (bot user `UBOT…`, bot id `BBOT…`).

    - `ack_timeout` / `max_retries`: Slack's Events API redelivery (3 s, 3 retries);
      `disconnect_grace`: how long a socket stays open after a `disconnect` message.
    - `rate_limit`: the per-channel posting bucket (`chat.postMessage`, file shares). Default
      `RateLimit(per_second=1.0, burst=4)`, from Slack's "1 message per second per channel,
      short bursts allowed" (the burst size is not published; see `slack_emulator_limits`).
      None turns the per-channel limit off. `workspace_rate_limit`: the posting cap shared by
      every channel's posts (Slack has one but publishes no figure; default 300/minute, burst
      20; None: off). `method_limits`: merged over every other method's tier bucket (Slack's
      Tier 1-4, enforced by default, per workspace): a `RateLimit` replaces one, None removes
      it, `NO_TIERS` removes them all. `rate_limited_by_method()` counts the 429s served.
    - `seed`: seeds the choice of Socket Mode connection per envelope (random, as on Slack);
      `max_connections`: Slack's 10 open connections per app; `refresh_after`: send each
      connection `refresh_requested` once it has been open that long (Slack: every few hours).
    - `clock`: monotonic seconds for rate limits and trigger expiry; pass a fake to step time.
    - `bot_scopes`: what the bot token was granted; by default the scopes of
      `deploy/slack-app-manifest.yaml`, as a workspace that installed it grants. A call
      without its scope answers `missing_scope` (`slack_emulator_scopes`); `bot_token_with`
      mints another token of the same bot with other scopes.
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
        rate_limit: RateLimit | None = POSTING_LIMIT,
        workspace_rate_limit: RateLimit | None = WORKSPACE_POSTING_LIMIT,
        method_limits: Mapping[str, RateLimit | None] | None = None,
        seed: int | None = None,
        max_connections: int = 10,
        clock: Callable[[], float] = time.monotonic,
        bot_scopes: Iterable[str] | None = None,
        refresh_after: float | None = None,
    ) -> None:
        scopes = manifest_scopes() if bot_scopes is None else bot_scopes
        self.state = WorkspaceState(team_name, bot_name, clock, scopes)
        self.hub = SocketHub(
            self.state, ack_timeout, max_retries, disconnect_grace, seed, max_connections,
            refresh_after,
        )  # fmt: skip
        self.hub.ack_listeners.append(lambda d, ack: on_view_ack(self.state, d, ack))
        limiter = Limiter(clock, rate_limit, workspace_rate_limit, method_limits)
        self.api = WebApi(self.state, self.hub, echo_bot_messages, limiter)
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

    def bot_token_with(self, scopes: Iterable[str]) -> str:
        """Another bot token of this app's bot, granted exactly `scopes` (an app installed
        from an older or edited manifest)."""
        token = f"xoxb-emulator-{secrets.token_hex(6)}"
        with self.state.lock:
            self.state.token_scopes[token] = frozenset(scopes)
        return token

    @property
    def bot_scopes(self) -> frozenset[str]:
        """The scopes of the main bot token (`bot_token`)."""
        with self.state.lock:
            return self.state.token_scopes[self.state.bot_token]

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

    # -- socket and fault control --------------------------------------------------------

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

    def disconnect(
        self,
        reason: str = "refresh_requested",
        close_after: float | None = None,
        conn_id: str | None = None,
    ) -> None:
        """Send `{"type": "disconnect", "reason": …}` to every socket (or only `conn_id`),
        close them later. For `link_disabled` use `disable_socket_mode`."""
        self.hub.run_soon(self.hub.send_disconnect(reason, close_after, conn_id))

    def disable_socket_mode(self) -> None:
        """The app's Socket Mode turned off: `link_disabled`, and no new connection until
        `enable_socket_mode` (see `slack_emulator_sockfaults`)."""
        self.hub.run_soon(self.hub.disable())

    def enable_socket_mode(self) -> None:
        self.hub.enable()

    def deafen(self, conn_id: str | None = None) -> str:
        """Make a connection (default: the newest) deaf: open, answering pings, no envelopes."""
        return self.hub.deafen(conn_id)

    def lose_acks(self, count: int) -> None:
        """The acks of the next `count` Events API deliveries are lost on the way to Slack (one
        each): those come again after the ack timeout (`retry_attempt` + 1, `timeout`)."""
        with self.state.lock:
            self.hub.acks_to_lose += count

    def limit_connections(self, most: int) -> None:
        """Change the app's connection limit (10 on Slack), e.g. to stand for connections
        Slack still counts for the app (python-slack-sdk #1940's "ghost registrations")."""
        self.hub.max_connections = most

    def drop_sockets(self) -> None:
        """Kill every Socket Mode connection abruptly (TCP reset, no close frame)."""
        self.hub.run_soon(self.hub.drop_all())

    def inject(
        self,
        method: str,
        status: int = 429,
        retry_after: int = 1,
        times: int | None = 1,
        error: str | None = None,
        after: bool = False,
        channel: str | None = None,
    ) -> None:
        """Make the next `times` calls of `method` fail (every call if `times` is None, until
        `clear_faults`): 429 with `Retry-After`, a 5xx, `status=200` with `{"ok": false,
        "error": error}`, or `status=0` for a TCP reset. With `after`, the call takes effect
        first and only its answer fails. With `channel`, only calls naming that channel."""
        if times is not None and times <= 0:
            return
        default = "ratelimited" if status == 429 else "internal_error"
        cid = None
        if channel is not None:
            with self.state.lock:
                cid = self.state.channel(channel).id
        fault = Fault(status, retry_after, error or default, after, cid, times)
        self.state.add_fault(method, fault)

    def fail_connections_open(self, times: int = 1, error: str = "internal_error") -> None:
        """The next `times` `apps.connections.open` calls answer `ok: false`."""
        self.inject("apps.connections.open", status=200, times=times, error=error)

    def fail_channel(
        self,
        channel: str,
        error: str = "channel_not_found",
        methods: Iterable[str] = CHANNEL_METHODS,
    ) -> None:
        """From now on every call of `methods` naming `channel` answers `{"ok": false,
        "error": error}` (HTTP 200, as Slack answers permanent errors): `channel_not_found`,
        `not_in_channel`, `is_archived`, `invalid_blocks`, `msg_too_long`... until
        `heal_channel`. For a true `not_in_channel`, `leave(emu.bot_user_id, channel)`."""
        with self.state.lock:
            cid = self.state.channel(channel).id
        for method in methods:
            self.state.add_fault(method, Fault(200, 0, error, channel=cid, remaining=None))

    def heal_channel(self, channel: str) -> None:
        """Undo `fail_channel` (and every other fault bound to that channel)."""
        with self.state.lock:
            cid = self.state.channel(channel).id
        self.state.clear_faults(cid)

    def clear_faults(self) -> None:
        """Drop every injected fault that has not been used up."""
        self.state.clear_faults()
