"""Socket Mode transport: a slack-bolt AsyncApp on an aiohttp websocket.

The runner needs no public URL: Slack (or the loopback emulator) pushes events over a websocket
the runner opened with its app-level token. A short ping interval makes a silently dead socket
(no close frame) get noticed and reconnected within seconds instead of the SDK's default tens.

``process_before_response=True``: Bolt then runs a listener to completion before it answers the
envelope, acks only if the listener returned, and answers nothing (500) if it raised. Slack
redelivers an Events API envelope that was not acked (about 3 s, up to three retries), so the
message listener can make the ack mean "kept" (see :mod:`bridge.chat.slack.listeners`). With the
default (False), Bolt acks every event before its listener even starts.

The websocket client is :class:`~bridge.chat.slack.adapter.socket_client.GuardedSocketModeClient`
(slack_sdk's, with reconnects serialized and backed off), watched for deafness by
:class:`~bridge.chat.slack.adapter.deafness.DeafWatch` once :meth:`SocketModeTransport.watch` is
called.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bridge.chat.slack.adapter.deafness import DeafWatch, History
from bridge.chat.slack.adapter.socket_client import GuardedSocketModeClient

log = logging.getLogger("agentbridge.slack")

CLOSE_S = 5.0
"""The longest a stop waits for the Socket Mode client to close."""


class SocketModeTransport:
    def __init__(self, client: AsyncWebClient, app_token: str, ping_interval: float = 2.0):
        self.app = AsyncApp(
            client=client,
            logger=logging.getLogger("agentbridge.slack.bolt"),
            raise_error_for_unhandled_request=False,
            process_before_response=True,
        )
        self.handler = _Handler(self.app, app_token, client, ping_interval)
        self.client: GuardedSocketModeClient = self.handler.client
        self.deaf_watch: DeafWatch | None = None
        self._watch_task: asyncio.Task[None] | None = None

    def on_event(self, name: str, listener: Any) -> None:
        self.app.event(name)(listener)

    def on_command(self, name: str, listener: Any) -> None:
        self.app.command(name)(listener)

    def on_action(self, listener: Any) -> None:
        """Every ``block_actions`` element of every message (features dispatch by action_id)."""
        self.app.action(re.compile(".*"))(listener)

    def on_view(self, listener: Any) -> None:
        """Every modal submission (``view_submission``), whatever its callback_id."""
        self.app.view(re.compile(".*"))(listener)

    async def connect(self) -> None:
        await self.handler.connect_async()  # type: ignore[no-untyped-call]
        log.info("slack: connected (Socket Mode)")

    async def connected(self) -> bool:
        """The websocket is open and its pings are answered (slack_sdk's own view)."""
        return bool(await self.handler.client.is_connected())

    def watch(
        self,
        history: History,
        channels: Callable[[], Sequence[str]],
        bot_user_id: Callable[[], str],
        interval: float,
    ) -> None:
        """Start the deaf-connection watch (``interval`` 0: none)."""
        if interval <= 0:
            return
        self.deaf_watch = DeafWatch(self.client, history, channels, bot_user_id, interval)
        self._watch_task = asyncio.get_running_loop().create_task(self.deaf_watch.run())

    async def close(self) -> None:
        """Disconnect, for at most :data:`CLOSE_S`: slack_sdk's aiohttp client can wedge in
        ``close()`` when a (re)connect is in flight (python-slack-sdk #1913), and a runner
        asked to stop must stop. Nothing unacknowledged is lost by leaving early: Slack sends
        it again to the next connection."""
        if self._watch_task is not None:
            self._watch_task.cancel()
        try:
            await asyncio.wait_for(self.handler.close_async(), CLOSE_S)  # type: ignore[no-untyped-call]
        except TimeoutError:
            log.warning("slack: the Socket Mode client did not close within %.0fs; left", CLOSE_S)


class _Handler(AsyncSocketModeHandler):
    """Bolt's handler on :class:`GuardedSocketModeClient` (its own constructor hard-codes
    slack_sdk's client; this is that constructor with the client swapped)."""

    client: GuardedSocketModeClient

    def __init__(
        self, app: AsyncApp, app_token: str, web_client: AsyncWebClient, ping_interval: float
    ) -> None:
        self.app = app
        self.app_token = app_token
        self.client = GuardedSocketModeClient(
            app_token=app_token, logger=app.logger, web_client=web_client,
            ping_interval=ping_interval,
        )  # fmt: skip
        self.client.socket_mode_request_listeners.append(self.handle)  # type: ignore[arg-type]
