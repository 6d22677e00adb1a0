"""The runner's Socket Mode client (`GuardedSocketModeClient`) against the emulator: reconnects
one at a time however long one takes, and backs off when Slack turns reconnects away.

`CLIENT` names the class under test so the same checks can be run against slack_sdk's own
`SocketModeClient` (that is how they were seen failing before the guard existed).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bridge.chat.slack.adapter.socket_client import GuardedSocketModeClient
from bridge.devtools.slack_emulator import SlackEmulator

CLIENT: Any = GuardedSocketModeClient


async def until(emu: SlackEmulator, predicate: Any, what: str, timeout: float = 30) -> None:
    await asyncio.to_thread(emu.wait_for, predicate, timeout, what)


async def started(emu: SlackEmulator) -> Any:
    web = AsyncWebClient(base_url=emu.api_url)
    client = CLIENT(app_token=emu.app_token, web_client=web, ping_interval=1.0)
    client.logger = logging.getLogger("test.socket")
    await client.connect()
    await until(emu, lambda: emu.connection_count() == 1, "connected")
    return client


def test_two_reconnects_asked_at_once_while_one_is_slow_make_one_new_connection() -> None:
    """A `disconnect` is answered while another reconnect holds the lock past slack_sdk's
    5 s wait (apps.connections.open rate-limited, Retry-After 6 s): slack_sdk then reconnects
    without the lock, twice; the guard waits, sees the session already replaced, and stops."""

    async def main() -> None:
        async with SlackEmulator(rate_limit=None) as emu:
            client = await started(emu)
            emu.inject("apps.connections.open", status=429, retry_after=6, times=1)
            first = asyncio.ensure_future(client.connect_to_new_endpoint(force=True))
            await until(emu, lambda: emu.rate_limited_count == 1, "the first one waiting")
            second = asyncio.ensure_future(client.connect_to_new_endpoint(force=True))
            await asyncio.gather(first, second)
            await until(emu, lambda: emu.connection_count() == 1, "one connection")
            history = emu.connection_history(emu.app_token)
            assert len(history) == 2, f"reconnected more than once: {history}"
            assert emu.live_overlaps(emu.app_token) == []
            await client.close()

    asyncio.run(main())


def test_refused_reconnects_back_off() -> None:
    """At the app's connection limit every new connection is told `too_many_websockets`:
    slack_sdk reconnects at once, again and again; the guard waits 0.5 s, 1 s, 2 s..."""

    async def main() -> None:
        async with SlackEmulator(disconnect_grace=0.2, rate_limit=None) as emu:
            client = await started(emu)
            emu.limit_connections(0)
            emu.disconnect("refresh_requested")

            def refused() -> list[float]:
                return [r["opened_at"] for r in emu.connection_history() if r["refused"]]

            await until(emu, lambda: len(refused()) >= 3, "three refused")
            emu.limit_connections(10)
            await until(emu, lambda: emu.connection_count() == 1, "connected again")
            times = refused()
            gaps = [b - a for a, b in itertools.pairwise(times)]
            assert all(g >= 0.5 for g in gaps), f"no backoff between attempts: {gaps}"
            assert emu.live_overlaps(emu.app_token) == []
            await client.close()

    asyncio.run(main())
