"""Socket Mode faults as Slack produces them, on raw websockets (so each test decides who acks):
`disconnect` for each reason (and the periodic `refresh_requested`), Socket Mode turned off and on
(`link_disabled`), a deaf connection, retries of Events API envelopes only, and the connection
history that lets a test prove a client never held two live connections.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bridge.devtools.slack_emulator import SlackEmulator
from tests.unit.test_slack_emulator_socket import Raw, connect, run, wait


async def closed(raw: Raw) -> None:
    """Wait (on the loop) for the emulator to close `raw`."""
    await asyncio.wait_for(raw.task, 10)


def test_periodic_refresh_requested_then_closed_after_the_grace() -> None:
    with SlackEmulator(refresh_after=0.3, disconnect_grace=0.2, rate_limit=None) as emu:

        async def scenario(session: aiohttp.ClientSession) -> None:
            sock = await connect(emu, session)
            await closed(sock)
            assert [m.get("reason") for m in sock.other] == ["refresh_requested"]
            await wait(emu, lambda: emu.connection_history()[0]["closed_seq"], "recorded")
            (record,) = emu.connection_history(emu.app_token)
            assert record["disconnects"] == ["refresh_requested"]
            assert record["closed_seq"] > record["opened_seq"] and record["refused"] is None

        run(emu, scenario)


def test_disconnect_one_connection_by_id_and_refuse_unknown_reasons() -> None:
    with SlackEmulator(disconnect_grace=0.1, rate_limit=None) as emu:

        async def scenario(session: aiohttp.ClientSession) -> None:
            a, b = await connect(emu, session), await connect(emu, session)
            first = emu.connections()[0]["id"]
            emu.disconnect("refresh_requested", conn_id=first)
            await closed(a)
            assert not b.ws.closed and not b.other
            assert [c["id"] for c in emu.connections()] != [first]
            with pytest.raises(ValueError, match="no disconnect reason"):
                await emu.hub.send_disconnect("bored", None)
            await b.ws.close()

        run(emu, scenario)


def test_link_disabled_closes_everything_and_holds_events_until_enabled() -> None:
    with SlackEmulator(disconnect_grace=0.1, rate_limit=None) as emu:
        alice = emu.add_user("alice")
        general = emu.add_channel("general", [alice])
        web = WebClient(base_url=emu.api_url)

        async def scenario(session: aiohttp.ClientSession) -> None:
            sock = await connect(emu, session)
            url = (await asyncio.to_thread(web.apps_connections_open, app_token=emu.app_token))[
                "url"
            ]
            emu.disable_socket_mode()
            await closed(sock)
            assert [m.get("reason") for m in sock.other] == ["link_disabled"]
            with pytest.raises(SlackApiError) as err:
                await asyncio.to_thread(web.apps_connections_open, app_token=emu.app_token)
            assert err.value.response["error"] == "access_denied"
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(url)  # a URL issued before is no good either
            assert refused.value.status == 403
            emu.post_as_user(alice, general, "while off")
            emu.enable_socket_mode()
            again = await connect(emu, session)
            await wait(emu, lambda: again.got, "the held event")
            assert again.got[0]["payload"]["event"]["text"] == "while off"
            assert emu.live_overlaps() == []
            await again.ws.close()

        run(emu, scenario)


def test_a_deaf_connection_hears_nothing_its_envelopes_are_retried_elsewhere() -> None:
    with SlackEmulator(seed=4, ack_timeout=0.2, max_retries=50, rate_limit=None) as emu:
        alice = emu.add_user("alice")
        general = emu.add_channel("general", [alice])

        async def scenario(session: aiohttp.ClientSession) -> None:
            deaf = await connect(emu, session)
            deaf_id = emu.deafen()
            good = await connect(emu, session)
            for i in range(10):
                emu.post_as_user(alice, general, f"m{i}")
            await wait(emu, lambda: len(good.got) >= 10, "all ten on the good connection")
            await wait(emu, lambda: all(d["acked"] for d in emu.deliveries()), "acked")
            assert deaf.got == []
            await deaf.ws.ping(b"still there")  # it answers pings: only envelopes stop
            sent_deaf = [d for d in emu.deliveries() if deaf_id in d["connections"]]
            assert sent_deaf, "with this seed Slack routes some envelopes to the deaf one"
            for env in good.got:
                attempt = env["retry_attempt"]
                assert env["retry_reason"] == ("timeout" if attempt else "")
            assert {e["retry_attempt"] for e in good.got} != {0}
            assert [c["deaf"] for c in emu.connections()].count(True) == 1
            await deaf.ws.close()
            await good.ws.close()

        run(emu, scenario)


def test_with_only_a_deaf_connection_events_pile_up_as_retries() -> None:
    with SlackEmulator(ack_timeout=0.1, max_retries=1000, rate_limit=None) as emu:
        alice = emu.add_user("alice")
        general = emu.add_channel("general", [alice])

        async def scenario(session: aiohttp.ClientSession) -> None:
            deaf = await connect(emu, session)
            emu.deafen()
            emu.post_as_user(alice, general, "lost in the void")
            await wait(emu, lambda: emu.deliveries()[0]["attempts"] >= 3, "retried")
            assert deaf.got == [] and not emu.deliveries()[0]["acked"]
            await deaf.ws.close()
            fresh = await connect(emu, session)
            await wait(emu, lambda: fresh.got, "delivered on a connection that hears")
            assert fresh.got[0]["retry_attempt"] >= 3
            await fresh.ws.close()

        run(emu, scenario)


def test_only_events_are_retried_not_slash_commands() -> None:
    with SlackEmulator(ack_timeout=0.1, rate_limit=None) as emu:
        alice = emu.add_user("alice")
        general = emu.add_channel("general", [alice])

        async def scenario(session: aiohttp.ClientSession) -> None:
            sock = await connect(emu, session, ack=False)
            emu.slash_command(alice, general, "/agent", "status")
            emu.post_as_user(alice, general, "hello")
            await wait(emu, lambda: all(d["gave_up"] for d in emu.deliveries()), "given up")
            by_type = {d["type"]: d["attempts"] for d in emu.deliveries()}
            assert by_type == {"slash_commands": 1, "events_api": 4}  # 1 + Slack's 3 retries
            assert "retry_attempt" not in sock.got[0]
            await sock.ws.close()

        run(emu, scenario)


def test_history_tells_sequential_connections_from_overlapping_ones() -> None:
    with SlackEmulator(rate_limit=None) as emu:

        async def scenario(session: aiohttp.ClientSession) -> None:
            a = await connect(emu, session)
            await a.ws.close()
            await wait(emu, lambda: emu.connection_count() == 0, "a closed")
            b = await connect(emu, session)
            assert emu.live_overlaps(emu.app_token) == []
            c = await connect(emu, session)
            ids = [r["id"] for r in emu.connection_history()]
            assert emu.live_overlaps(emu.app_token) == [(ids[1], ids[2])]
            assert emu.live_overlaps("xapp-someone-else") == []
            await b.ws.close()
            await c.ws.close()

        run(emu, scenario)


def test_a_lost_ack_means_the_envelope_comes_again() -> None:
    with SlackEmulator(ack_timeout=0.1, rate_limit=None) as emu:
        alice = emu.add_user("alice")
        general = emu.add_channel("general", [alice])

        async def scenario(session: aiohttp.ClientSession) -> None:
            sock = await connect(emu, session)
            emu.lose_acks(1)
            emu.post_as_user(alice, general, "once")
            emu.post_as_user(alice, general, "twice")
            await wait(emu, lambda: all(d["acked"] for d in emu.deliveries()), "acked")
            assert [d["attempts"] for d in emu.deliveries()] == [2, 1]
            assert [(e["retry_attempt"], e["retry_reason"]) for e in sock.got] == [
                (0, ""), (0, ""), (1, "timeout")
            ]  # fmt: skip
            await sock.ws.close()

        run(emu, scenario)
