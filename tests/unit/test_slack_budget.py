"""The Slack backend budgets every method by its tier, coalesces and degrades receipt reactions
when their budget is short, honours Retry-After, and takes 1/N of each budget with N hosts.

Against the emulator with every tier enforced and the real slack_sdk; outcomes only (what
landed, how many 429s), never durations.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bridge.chat.slack import scopes, tiers
from bridge.chat.slack.backend import SlackBackend
from bridge.chat.slack.budget import BURST_SHARE, MethodBudget
from bridge.devtools.slack_emulator import SlackEmulator
from bridge.devtools.slack_emulator_limits import DEFAULT_METHOD_LIMITS
from bridge.store.db import Store
from bridge.store.hosts import HostBook


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    with SlackEmulator() as emulator:  # every tier enforced, as on Slack
        yield emulator


def test_every_method_has_a_budget_no_looser_than_slacks() -> None:
    for method in scopes.METHODS:
        if method == tiers.POSTING:
            continue
        tier = tiers.budget_of(method)
        assert tier is not None, f"{method} has no tier in bridge/chat/slack/tiers.py"
        slack = DEFAULT_METHOD_LIMITS[method]
        assert tier.per_minute / 60 <= slack.per_second + 1e-9, method
        assert tier.burst * BURST_SHARE <= slack.burst, method


def test_calls_past_a_methods_burst_wait_for_it_instead_of_meeting_a_429(
    emu: SlackEmulator,
) -> None:
    """More ephemerals at once than chat.postEphemeral's Tier 4 burst: all land, none refused."""
    alice = emu.add_user("alice")
    cid = emu.add_channel("general", [alice])
    count = tiers.TIERS[4].burst + 6

    async def scenario() -> int:
        backend = SlackBackend(emu.bot_token, emu.app_token, emu.api_url)
        await asyncio.gather(*(backend.notify_user(cid, alice, f"n{i}") for i in range(count)))
        return backend.rate_limited

    assert asyncio.run(scenario()) == 0
    assert sorted(e["text"] for e in emu.ephemerals(alice)) == sorted(f"n{i}" for i in range(count))
    assert emu.rate_limited_count == 0


def _steered(emu: SlackEmulator, n: int) -> tuple[str, list[str]]:
    alice = emu.add_user("alice")
    cid = emu.add_channel("steer", [alice])
    return cid, [emu.post_as_user(alice, cid, f"m{i}") for i in range(n)]


def test_reactions_coalesce_per_message_while_their_budget_is_short(emu: SlackEmulator) -> None:
    """Past reactions.add's burst, a message's newer receipt replaces the one still waiting:
    the queued-then-delivered pair goes out as the delivered one alone, with no 429."""
    burst = int(tiers.TIERS[3].burst * BURST_SHARE)
    cid, stamps = _steered(emu, burst + 2)

    async def scenario() -> tuple[int, int]:
        backend = SlackBackend(emu.bot_token, emu.app_token, emu.api_url)
        for ts in stamps[:burst]:
            await backend.react(cid, ts, "eyes")  # the burst: sent at once
        assert backend.budget.short("reactions.add")
        for ts in stamps[burst:]:
            await backend.react(cid, ts, "eyes")  # queued: returns at once
            await backend.react(cid, ts, "white_check_mark")  # replaces it
        await asyncio.to_thread(
            emu.wait_for,
            lambda: all(emu.reactions(cid, ts) for ts in stamps),
            60,
            "every reaction",
        )
        await backend.close()
        return backend.rate_limited, backend.reactions.coalesced

    limited, coalesced = asyncio.run(scenario())
    assert (limited, coalesced) == (0, 2)
    for ts in stamps[burst:]:
        assert emu.reactions(cid, ts) == {"white_check_mark": [emu.bot_user_id]}
    assert emu.rate_limited_count == 0


def test_reactions_degrade_under_overload_but_posts_do_not(emu: SlackEmulator) -> None:
    """More messages waiting for a reaction than the queue keeps: the oldest are dropped (and
    counted); a post made meanwhile lands."""
    burst = int(tiers.TIERS[3].burst * BURST_SHARE)
    cid, stamps = _steered(emu, burst + 4)

    async def scenario() -> int:
        from bridge.chat.protocol import Outgoing

        backend = SlackBackend(emu.bot_token, emu.app_token, emu.api_url)
        backend.reactions.limit = 2
        for ts in stamps:
            await backend.react(cid, ts, "eyes")
        await backend.post(Outgoing("a", cid, "the answer", "e1"))
        await asyncio.to_thread(
            emu.wait_for, lambda: emu.reactions(cid, stamps[-1]), 60, "the newest reaction"
        )
        await asyncio.to_thread(
            emu.wait_for, lambda: emu.reactions(cid, stamps[-2]), 60, "the other kept one"
        )
        await backend.close()
        assert backend.rate_limited == 0
        return backend.reactions.dropped

    assert asyncio.run(scenario()) == 2
    assert [m["text"] for m in emu.messages(cid) if m.get("bot_id")] == ["the answer"]
    assert emu.reactions(cid, stamps[burst]) == emu.reactions(cid, stamps[burst + 1]) == {}
    assert emu.rate_limited_count == 0


def test_a_429_holds_its_method_and_the_call_lands_after_retry_after(emu: SlackEmulator) -> None:
    cid = emu.add_channel("general")
    emu.inject("conversations.info", status=429, retry_after=1)

    async def scenario() -> tuple[int, dict[str, int], bool]:
        backend = SlackBackend(emu.bot_token, emu.app_token, emu.api_url)
        held: list[bool] = []
        task = asyncio.create_task(backend.humans_in(cid))
        while not backend.budget.rate_limited:
            await asyncio.sleep(0.01)
        held.append(backend.budget.short("conversations.info"))  # held by Retry-After
        humans = await task
        return humans, backend.budget.rate_limited, held[0]

    humans, limited, held = asyncio.run(scenario())
    assert (humans, limited, held) == (0, {"conversations.info": 1}, True)
    assert emu.rate_limited_by_method() == {"conversations.info": 1}  # the injected one only


def test_n_hosts_each_budget_a_nth_and_a_rebuilt_budget_starts_spent() -> None:
    async def scenario() -> None:
        budget = MethodBudget()
        assert not budget.short("reactions.add")
        await budget.acquire("reactions.add")
        assert budget.share(2) and not budget.share(2)
        assert budget.short("reactions.add")  # used before the change: assumed spent
        bucket = budget._bucket("reactions.add")
        assert bucket is not None and bucket.max_rate == int(10 * BURST_SHARE / 2)
        assert not budget.short("chat.delete")  # never used here: a full share at once

    asyncio.run(scenario())


def test_live_hosts_counts_those_heard_from_recently(tmp_path: object) -> None:
    from pathlib import Path

    from bridge.cluster.heartbeat import live_hosts

    assert isinstance(tmp_path, Path)
    store = Store(tmp_path / "db.sqlite")
    book = HostBook(store)
    book.beat("a", "1")
    book.beat("b", "1")
    assert live_hosts(book, "a", 30) == 2
    with store.tx() as db:
        db.execute("UPDATE hosts SET last_seen = last_seen - 100 WHERE host = 'b'")
    assert live_hosts(book, "a", 30) == 1
    assert live_hosts(book, "c", 30) == 2  # itself, before its first beat
