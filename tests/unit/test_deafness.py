"""The deaf-connection watch, with the runner's real Socket Mode client against the emulator:
it looks at a channel only when no envelope came for a whole interval, counts only messages of
someone else's that are old enough, replaces a deaf connection once per missed message, and
leaves a hearing one alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bridge.chat.slack.adapter.deafness import DeafWatch
from bridge.chat.slack.adapter.socket_client import GuardedSocketModeClient
from bridge.devtools.slack_emulator import SlackEmulator


async def until(emu: SlackEmulator, predicate: Any, what: str) -> None:
    await asyncio.to_thread(emu.wait_for, predicate, 30, what)


class Rig:
    """A connected client, a watch on it, and a count of the history look-ups it made."""

    def __init__(self, emu: SlackEmulator, channel: str) -> None:
        self.emu, self.channel, self.looks = emu, channel, 0
        self.bot = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
        self.client = GuardedSocketModeClient(
            app_token=emu.app_token,
            web_client=AsyncWebClient(base_url=emu.api_url),
            ping_interval=1.0,
        )
        self.client.logger = logging.getLogger("test.deaf")

    async def history(self, channel: str, oldest: str, latest: str) -> Sequence[dict[str, Any]]:
        self.looks += 1
        page = await self.bot.conversations_history(
            channel=channel, oldest=oldest, latest=latest, limit=20
        )
        return list(page.get("messages") or [])

    def watch(self, grace: float) -> DeafWatch:
        return DeafWatch(
            self.client, self.history, lambda: [self.channel], lambda: self.emu.bot_user_id,
            interval=0.2, grace=grace,
        )  # fmt: skip


def test_a_deaf_connection_is_replaced_once_per_missed_message() -> None:
    async def main() -> None:
        async with SlackEmulator(rate_limit=None, max_retries=1000, ack_timeout=0.2) as emu:
            alice = emu.add_user("alice")
            channel = emu.add_channel("agent-x", [alice])
            rig = Rig(emu, channel)
            await rig.client.connect()
            await until(emu, lambda: emu.connection_count() == 1, "connected")
            watch = rig.watch(grace=0.0)
            watch.since -= 1  # a message posted right after the watch started counts
            deaf = emu.deafen()
            await rig.bot.chat_postMessage(channel=channel, text="the bot's own: not evidence")
            heard = emu.post_as_user(alice, channel, "heard by another host's runner")
            await rig.bot.reactions_add(channel=channel, timestamp=heard, name="eyes")
            rig.client.last_envelope -= 1  # quiet for longer than the interval
            assert not await watch.check()  # neither the bot's post nor one it reacted to
            emu.post_as_user(alice, channel, "never heard")
            assert await watch.check()
            await until(emu, lambda: emu.connection_count() == 1 and emu.connections()[0]["id"]
                        != deaf, "replaced")  # fmt: skip
            assert watch.replaced == 1
            rig.client.last_envelope -= 1
            assert not await watch.check(), "the same missed message counted twice"
            assert emu.live_overlaps(emu.app_token) == []
            await rig.client.close()

    asyncio.run(main())


def test_no_look_while_events_flow_nor_for_fresh_messages() -> None:
    async def main() -> None:
        async with SlackEmulator(rate_limit=None) as emu:
            alice = emu.add_user("alice")
            channel = emu.add_channel("agent-x", [alice])
            rig = Rig(emu, channel)
            await rig.client.connect()
            await until(emu, lambda: emu.connection_count() == 1, "connected")
            emu.post_as_user(alice, channel, "heard")
            await until(emu, lambda: rig.client.seen, "the event arrived")
            watch = rig.watch(grace=3600.0)
            assert not await watch.check() and rig.looks == 0  # an envelope just came
            emu.deafen()
            emu.post_as_user(alice, channel, "too fresh to count")
            rig.client.last_envelope -= 1
            assert not await watch.check() and rig.looks == 1
            assert watch.replaced == 0
            await rig.client.close()

    asyncio.run(main())
