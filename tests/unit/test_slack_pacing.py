"""SlackBackend paces posts the way Slack limits them: a burst per channel, a workspace budget,
and a 429's Retry-After over both. Outcomes only (what landed, how many 429s), never durations.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bridge.chat.protocol import Outgoing
from bridge.chat.slack.backend import SlackBackend
from bridge.chat.slack.pacing import Pace, Pacer
from bridge.devtools.slack_emulator import RateLimit, SlackEmulator

JITTER_TOKEN = 1
"""The emulator's buckets hold one message more than the backend is told: the backend paces
when it sends, the emulator counts when a post arrives, and on a loaded box a post can arrive
late enough to squeeze the gap to the next one. One token of tolerance keeps "paced" apart
from "not paced" (unpaced, the bursts below overrun it at once) without timing the box."""


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    with SlackEmulator(
        rate_limit=RateLimit(per_second=1.0, burst=4 + JITTER_TOKEN),
        workspace_rate_limit=RateLimit(per_second=3.0, burst=4 + JITTER_TOKEN),
    ) as emulator:
        yield emulator


def test_a_burst_goes_out_at_once_then_paced_without_a_429(emu: SlackEmulator) -> None:
    """Ten posts to one channel: in order, exactly once, no 429 (the burst is used, the rest
    waits for the bucket rather than for Slack to refuse it)."""
    cid = emu.add_channel("burst")

    async def scenario() -> int:
        backend = SlackBackend(emu.bot_token, emu.app_token, emu.api_url)
        await asyncio.gather(
            *(backend.post(Outgoing("a", cid, f"m{i}", f"e{i}")) for i in range(10))
        )
        return backend.rate_limited

    assert asyncio.run(scenario()) == 0
    assert [m["text"] for m in emu.messages(cid)] == [f"m{i}" for i in range(10)]
    assert emu.rate_limited_count == 0


def test_the_workspace_budget_keeps_many_channels_under_slacks_limit(emu: SlackEmulator) -> None:
    """Six channels posting at once (12 posts) stay inside a workspace-wide budget (the backend
    is told 3/s burst 4; the emulator enforces that plus the jitter token)."""
    channels = [emu.add_channel(f"c{n}") for n in range(6)]

    async def scenario() -> None:
        pace = Pace(per_second=1.0, burst=4, workspace_per_second=3.0, workspace_burst=4)
        backend = SlackBackend(emu.bot_token, emu.app_token, emu.api_url, pace=pace)
        await asyncio.gather(
            *(
                backend.post(Outgoing("a", cid, f"{cid}-{i}", f"{cid}-{i}"))
                for cid in channels
                for i in range(2)
            )
        )

    asyncio.run(scenario())
    for cid in channels:
        assert [m["text"] for m in emu.messages(cid)] == [f"{cid}-0", f"{cid}-1"]
    assert emu.rate_limited_count == 0


def test_a_429_holds_the_channel_and_is_counted(emu: SlackEmulator) -> None:
    """Without its own pacing the backend meets 429s; each one is counted and waited out, and
    every message still lands once, in order."""
    cid = emu.add_channel("raw")

    async def scenario() -> int:
        backend = SlackBackend(emu.bot_token, emu.app_token, emu.api_url, min_interval=0)
        for i in range(6):
            await backend.post(Outgoing("a", cid, f"m{i}", f"e{i}"))
        return backend.rate_limited

    seen = asyncio.run(scenario())
    assert [m["text"] for m in emu.messages(cid)] == [f"m{i}" for i in range(6)]
    assert seen == emu.rate_limited_count >= 1


def test_a_reserved_slot_is_spent_by_the_next_post() -> None:
    """reserve() takes the slot ahead; the next slot() in that channel uses it instead of taking
    another, so a reservation never costs a channel two slots."""

    async def scenario() -> tuple[int, bool]:
        pacer = Pacer(Pace(per_second=1.0, burst=2, workspace_per_second=0))
        await pacer.reserve("C1")
        await pacer.reserve("C1")  # the bucket is now full
        bucket = pacer._channels["C1"]
        full = not bucket.has_capacity()
        await pacer.slot("C1")
        await pacer.slot("C1")  # both reserved: neither waits on the full bucket
        return pacer._held["C1"], full

    held, full = asyncio.run(scenario())
    assert full and held == 0


def test_the_slack_pace_config_keys_reach_the_backend(tmp_path: object) -> None:
    from pathlib import Path

    from bridge.chat.factory import make_backend
    from bridge.config.model import parse_config

    text = "agents: []\nslack_pace: {per_second: 0.5, burst: 2, workspace_burst: 9}\n"
    config = parse_config(text, Path(str(tmp_path)) / "agents.yaml")
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}
    backend = make_backend(Path(str(tmp_path)), env, config.slack_pace.model_dump())
    assert backend._inner.pacer.pace == Pace(  # type: ignore[attr-defined]
        per_second=0.5, burst=2, workspace_per_second=5.0, workspace_burst=9
    )
