"""The emulator enforces every method's Slack tier, per workspace, like Slack does.

Slack (https://docs.slack.dev/apis/web-api/rate-limits) limits each method per app per
workspace by tier and answers HTTP 429 + `Retry-After` + `{"ok": false, "error": "ratelimited"}`
over it, with no effect. Time is a fake clock stepped by the tests (no sleeps).
"""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bridge.chat.slack import scopes
from bridge.devtools.slack_emulator import NO_TIERS, RateLimit, SlackEmulator
from bridge.devtools.slack_emulator_limits import DEFAULT_METHOD_LIMITS, TIER_LIMITS


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client(emu: SlackEmulator, token: str | None = None) -> WebClient:
    return WebClient(token=token or emu.bot_token, base_url=emu.api_url, timeout=10)


def refused(call: object) -> SlackApiError:
    assert callable(call)
    with pytest.raises(SlackApiError) as err:
        call()
    return err.value


def test_every_method_the_product_calls_has_a_tier_by_default() -> None:
    for method in scopes.METHODS:
        if method != "chat.postMessage":  # its own rule: per channel plus the workspace cap
            assert method in DEFAULT_METHOD_LIMITS, method
    assert DEFAULT_METHOD_LIMITS["reactions.add"] == TIER_LIMITS[3]
    assert DEFAULT_METHOD_LIMITS["conversations.list"] == TIER_LIMITS[2]


def test_a_tier_3_method_refuses_past_its_burst_with_no_effect() -> None:
    clock = FakeClock()
    with SlackEmulator(clock=clock) as emu:
        alice = emu.add_user("alice")
        cid = emu.add_channel("general", [alice])
        web = client(emu)
        stamps = [emu.post_as_user(alice, cid, f"m{i}") for i in range(12)]
        burst = TIER_LIMITS[3].burst
        for ts in stamps[:burst]:
            web.reactions_add(channel=cid, timestamp=ts, name="eyes")
        err = refused(lambda: web.reactions_add(channel=cid, timestamp=stamps[burst], name="eyes"))
        assert err.response.status_code == 429
        assert err.response.headers["Retry-After"] == "2"  # 1.2 s to the next of 50 a minute
        assert err.response.data == {"ok": False, "error": "ratelimited"}
        assert emu.reactions(cid, stamps[burst]) == {}  # refused: nothing happened
        clock.now += 1.2
        web.reactions_add(channel=cid, timestamp=stamps[burst], name="eyes")
        assert emu.reactions(cid, stamps[burst]) == {"eyes": [emu.bot_user_id]}
        assert emu.rate_limited_by_method() == {"reactions.add": 1}
        assert emu.rate_limits()[0]["scope"] == "method"


def test_an_edit_refused_by_its_tier_leaves_the_message_alone() -> None:
    clock = FakeClock()
    with SlackEmulator(clock=clock) as emu:
        cid = emu.add_channel("status")
        web = client(emu)
        ts = web.chat_postMessage(channel=cid, text="v0")["ts"]
        for i in range(TIER_LIMITS[3].burst):
            web.chat_update(channel=cid, ts=ts, text=f"v{i + 1}")
        refused(lambda: web.chat_update(channel=cid, ts=ts, text="refused"))
        assert emu.messages(cid)[-1]["text"] == f"v{TIER_LIMITS[3].burst}"
        assert emu.rate_limited_by_method() == {"chat.update": 1}


def test_the_budget_is_the_workspaces_shared_by_every_token_of_the_app() -> None:
    """Two runners (two tokens, two clients) draw from one bucket per method."""
    clock = FakeClock()
    with SlackEmulator(clock=clock) as emu:
        one, two = client(emu), client(emu, emu.bot_token_with(emu.bot_scopes))
        burst = TIER_LIMITS[2].burst
        for i in range(burst):
            (one if i % 2 else two).conversations_list()
        assert refused(two.conversations_list).response.status_code == 429
        assert refused(one.conversations_list).response.status_code == 429
        one.auth_test()  # another method: its own bucket
        assert emu.rate_limited_by_method() == {"conversations.list": 2}


def test_the_workspace_posting_cap_holds_across_channels() -> None:
    clock = FakeClock()
    with SlackEmulator(clock=clock) as emu:
        channels = [emu.add_channel(f"c{n}") for n in range(21)]
        web = client(emu)
        for cid in channels[:20]:
            web.chat_postMessage(channel=cid, text="one each")
        err = refused(lambda: web.chat_postMessage(channel=channels[20], text="over the cap"))
        assert err.response.status_code == 429
        assert emu.rate_limits()[-1]["scope"] == "workspace"
        assert emu.messages(channels[20]) == []


def test_tests_loosen_or_tighten_a_tier_through_method_limits() -> None:
    clock = FakeClock()
    tight = {"auth.test": RateLimit(per_second=1 / 60, burst=1), "conversations.list": None}
    with SlackEmulator(clock=clock, method_limits=tight) as emu:
        web = client(emu)
        web.auth_test()
        assert refused(web.auth_test).response.headers["Retry-After"] == "60"
        for _ in range(3 * TIER_LIMITS[2].burst):
            web.conversations_list()  # removed: unlimited
    with SlackEmulator(clock=clock, method_limits=NO_TIERS) as emu:
        web = client(emu)
        for _ in range(3 * TIER_LIMITS[4].burst):
            web.auth_test()
        assert emu.rate_limited_count == 0
