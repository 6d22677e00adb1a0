"""Socket Mode with several connections, as Slack runs it: one connection per envelope, retries.

Slack sends each envelope to exactly one of an app's open connections, picked at random, and
sends an unacknowledged Events API envelope again (same `event_id`, a new envelope id,
`retry_attempt` + 1, `retry_reason: "timeout"`) to whichever connection it picks next. An app may
hold at most 10 connections. The clients here are raw websockets, so each test decides exactly
which connection acks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk import WebClient

from bridge.devtools.slack_emulator import SlackEmulator


class Raw:
    """One Socket Mode connection: records every envelope, acks unless told not to."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, hello: dict[str, Any], ack: bool):
        self.ws, self.hello, self.ack = ws, hello, ack
        self.got: list[dict[str, Any]] = []
        self.other: list[dict[str, Any]] = []
        """Messages without an envelope id (`disconnect`)."""
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "envelope_id" not in data:
                self.other.append(data)
                continue
            self.got.append(data)
            if self.ack:
                await self.ws.send_json({"envelope_id": data["envelope_id"]})


async def connect(emu: SlackEmulator, session: aiohttp.ClientSession, ack: bool = True) -> Raw:
    url = await asyncio.to_thread(
        lambda: WebClient(base_url=emu.api_url).apps_connections_open(app_token=emu.app_token)
    )
    ws = await session.ws_connect(url["url"])
    return Raw(ws, await ws.receive_json(), ack)


def run(emu: SlackEmulator, scenario: Callable[[aiohttp.ClientSession], Awaitable[None]]) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            await scenario(session)

    asyncio.run(main())


async def wait(emu: SlackEmulator, predicate: Callable[[], object], what: str) -> None:
    await asyncio.to_thread(emu.wait_for, predicate, 10, what)


def test_each_envelope_goes_to_exactly_one_connection_at_random() -> None:
    with SlackEmulator(seed=1, rate_limit=None) as emu:
        alice = emu.add_user("alice")
        general = emu.add_channel("general", [alice])

        async def scenario(session: aiohttp.ClientSession) -> None:
            socks = [await connect(emu, session) for _ in range(3)]
            assert [s.hello["num_connections"] for s in socks] == [1, 2, 3]
            for i in range(30):
                emu.post_as_user(alice, general, f"m{i}")
            await wait(emu, lambda: sum(len(s.got) for s in socks) == 30, "30 envelopes")
            await wait(emu, lambda: all(d["acked"] for d in emu.deliveries()), "all acked")
            ids = [e["payload"]["event_id"] for s in socks for e in s.got]
            assert len(ids) == len(set(ids)) == 30  # exactly one connection each
            assert sum(1 for s in socks if s.got) >= 2  # spread, not pinned to one
            for s in socks:  # and in order on each connection
                texts = [int(e["payload"]["event"]["text"][1:]) for e in s.got]
                assert texts == sorted(texts)
            per_conn = {c["id"]: c["sent"] for c in emu.connections()}
            assert sorted(per_conn.values()) == sorted(len(s.got) for s in socks)
            assert all(len(d["connections"]) == 1 for d in emu.deliveries())
            for s in socks:
                await s.ws.close()

        run(emu, scenario)


def test_the_same_seed_spreads_envelopes_the_same_way() -> None:
    def spread(seed: int) -> list[int]:
        with SlackEmulator(seed=seed, rate_limit=None) as emu:
            alice = emu.add_user("alice")
            general = emu.add_channel("general", [alice])
            counts: list[int] = []

            async def scenario(session: aiohttp.ClientSession) -> None:
                socks = [await connect(emu, session) for _ in range(3)]
                for i in range(12):
                    emu.post_as_user(alice, general, f"m{i}")
                await wait(emu, lambda: sum(len(s.got) for s in socks) == 12, "12 envelopes")
                counts.extend(len(s.got) for s in socks)
                for s in socks:
                    await s.ws.close()

            run(emu, scenario)
            return counts

    assert spread(5) == spread(5)


def test_an_unacked_event_is_retried_on_any_connection() -> None:
    with SlackEmulator(seed=3, ack_timeout=0.2, max_retries=20, rate_limit=None) as emu:
        alice = emu.add_user("alice")
        general = emu.add_channel("general", [alice])

        async def scenario(session: aiohttp.ClientSession) -> None:
            deaf = await connect(emu, session, ack=False)
            good = await connect(emu, session)
            for i in range(8):  # one at a time: the seed then fixes every choice
                emu.post_as_user(alice, general, f"m{i}")
                await wait(emu, lambda: emu.deliveries()[-1]["acked"], f"m{i} acked")
            assert deaf.got, "with this seed some envelopes first go to the deaf connection"
            ids = {c["id"] for c in emu.connections()}
            for d in emu.deliveries():
                assert d["acked"] and d["connections"][-1] in ids
                assert len(d["envelope_ids"]) == len(d["connections"]) == d["attempts"]
            retried = [d for d in emu.deliveries() if d["attempts"] > 1]
            assert retried
            for env in deaf.got + good.got:
                attempt = env["retry_attempt"]
                assert env["retry_reason"] == ("timeout" if attempt else "")
            first = {e["payload"]["event_id"] for e in deaf.got if e["retry_attempt"] == 0}
            landed = {e["payload"]["event_id"]: e["retry_attempt"] for e in good.got}
            assert all(landed[event_id] >= 1 for event_id in first)
            await deaf.ws.close()
            await good.ws.close()

        run(emu, scenario)


def test_at_most_ten_connections() -> None:
    # twelve URLs in a row: more than apps.connections.open's Tier 1 burst (not what is tested)
    with SlackEmulator(method_limits={"apps.connections.open": None}) as emu:

        async def scenario(session: aiohttp.ClientSession) -> None:
            socks = [await connect(emu, session) for _ in range(10)]
            assert socks[-1].hello["num_connections"] == 10
            extra = await connect(emu, session)  # accepted, then told and closed: no hello
            assert extra.hello["type"] == "disconnect"
            assert extra.hello["reason"] == "too_many_websockets"
            await extra.task
            assert extra.ws.closed and not extra.got
            assert emu.connection_count() == 10
            await wait(emu, lambda: emu.connection_history()[-1]["closed_seq"], "it ended")
            assert emu.connection_history()[-1]["refused"] == "too_many_websockets"
            assert emu.live_overlaps() != []  # ten raw sockets of one token: ten live at once
            await socks[0].ws.close()
            await wait(emu, lambda: emu.connection_count() == 9, "one closed")
            socks[0] = await connect(emu, session)
            assert socks[0].hello["num_connections"] == 10
            for s in socks:
                await s.ws.close()

        run(emu, scenario)
