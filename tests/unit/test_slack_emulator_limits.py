"""The emulator's posting rate limits behave like Slack's, and the real SlackBackend copes.

Slack allows about one message per second per channel with short bursts, answers HTTP 429 with a
whole-second `Retry-After` and `{"ok": false, "error": "ratelimited"}` over the limit, and does
nothing for a refused call. Time is a fake clock stepped by the tests (no sleeps); only the
backend tests run on the real clock, and they assert outcomes, never durations.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bridge.devtools.slack_emulator import POSTING_LIMIT, RateLimit, SlackEmulator


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def client(emu: SlackEmulator) -> WebClient:
    return WebClient(token=emu.bot_token, base_url=emu.api_url, timeout=10)


def refused(call: object) -> SlackApiError:
    assert callable(call)
    with pytest.raises(SlackApiError) as err:
        call()
    return err.value


def test_default_is_one_a_second_per_channel_with_a_burst_of_four(clock: FakeClock) -> None:
    assert (POSTING_LIMIT.per_second, POSTING_LIMIT.burst) == (1.0, 4)
    with SlackEmulator(clock=clock) as emu:
        general, other = emu.add_channel("general"), emu.add_channel("other")
        web = client(emu)
        for i in range(4):
            web.chat_postMessage(channel=general, text=f"m{i}")
        err = refused(lambda: web.chat_postMessage(channel="#general", text="too many"))
        assert err.response.status_code == 429
        assert err.response.headers["Retry-After"] == "1"
        assert err.response.data == {"ok": False, "error": "ratelimited"}
        web.chat_postMessage(channel=other, text="its own bucket")

        clock.advance(0.5)  # half a token: still refused, Retry-After never below 1
        assert (
            refused(lambda: web.chat_postMessage(channel=general, text="x")).response.headers[
                "Retry-After"
            ]
            == "1"
        )
        clock.advance(0.5)
        web.chat_postMessage(channel=general, text="a second later")
        refused(lambda: web.chat_postMessage(channel=general, text="x"))
        clock.advance(60)  # a long pause refills the burst, not more
        for i in range(4):
            web.chat_postMessage(channel=general, text=f"burst{i}")
        refused(lambda: web.chat_postMessage(channel=general, text="x"))

        texts = [m["text"] for m in emu.messages(general)]
        assert texts == ["m0", "m1", "m2", "m3", "a second later"] + [f"burst{i}" for i in range(4)]
        assert emu.rate_limited_count == 4
        assert emu.rate_limits()[0] == {
            "method": "chat.postMessage", "channel": general, "scope": "channel", "retry_after": 1
        }  # fmt: skip
        assert "429s served: 4" in emu.summary()


def test_retry_after_is_the_wait_for_the_next_token(clock: FakeClock) -> None:
    with SlackEmulator(clock=clock, rate_limit=RateLimit(per_second=0.25, burst=1)) as emu:
        cid = emu.add_channel("slow")
        web = client(emu)
        web.chat_postMessage(channel=cid, text="one")
        assert (
            refused(lambda: web.chat_postMessage(channel=cid, text="x")).response.headers[
                "Retry-After"
            ]
            == "4"
        )
        clock.advance(2.5)
        assert (
            refused(lambda: web.chat_postMessage(channel=cid, text="x")).response.headers[
                "Retry-After"
            ]
            == "2"
        )  # 1.5 s to go, in whole seconds
        clock.advance(1.5)
        web.chat_postMessage(channel=cid, text="two")


def test_only_posts_spend_from_the_posting_bucket(clock: FakeClock) -> None:
    with SlackEmulator(clock=clock, rate_limit=RateLimit(per_second=1, burst=1)) as emu:
        alice = emu.add_user("alice")
        cid = emu.add_channel("general", [alice])
        web = client(emu)
        ts = web.chat_postMessage(channel=cid, text="status: 0")["ts"]
        for i in range(1, 8):  # chat.update is Tier 3 on Slack, not a post
            web.chat_update(channel=cid, ts=ts, text=f"status: {i}")
        web.reactions_add(channel=cid, timestamp=ts, name="eyes")
        web.chat_postEphemeral(channel=cid, user=alice, text="just you")
        web.conversations_history(channel=cid)
        assert emu.rate_limited_count == 0
        # a file share is a message: it spends from the same bucket
        clock.advance(1)
        web.files_upload_v2(channel=cid, content="long output", filename="out.txt")
        err = refused(lambda: web.chat_postMessage(channel=cid, text="right after the file"))
        assert err.response.status_code == 429
        assert [c for c, _ in emu.calls() if c.startswith("files.")] == [
            "files.getUploadURLExternal",
            "files.completeUploadExternal",
        ]


def test_upload_completion_is_refused_like_a_post(clock: FakeClock) -> None:
    with SlackEmulator(clock=clock, rate_limit=RateLimit(per_second=1, burst=1)) as emu:
        cid = emu.add_channel("general")
        web = client(emu)
        web.chat_postMessage(channel=cid, text="first")
        err = refused(lambda: web.files_upload_v2(channel=cid, content="x", filename="a.txt"))
        assert err.response.status_code == 429
        assert emu.rate_limits()[-1]["method"] == "files.completeUploadExternal"
        assert [m["text"] for m in emu.messages(cid)] == ["first"]  # refused: nothing shared


def test_method_limits_model_tier_3_for_updates(clock: FakeClock) -> None:
    tier3 = RateLimit(per_second=50 / 60, burst=2)
    with SlackEmulator(clock=clock, method_limits={"chat.update": tier3}) as emu:
        cid = emu.add_channel("general")
        web = client(emu)
        ts = web.chat_postMessage(channel=cid, text="v0")["ts"]
        web.chat_update(channel=cid, ts=ts, text="v1")
        web.chat_update(channel=cid, ts=ts, text="v2")
        err = refused(lambda: web.chat_update(channel=cid, ts=ts, text="v3"))
        assert err.response.headers["Retry-After"] == "2"  # 1.2 s rounded up
        assert emu.rate_limits()[-1]["scope"] == "method"
        assert emu.messages(cid)[0]["text"] == "v2"


def test_workspace_budget_refuses_without_spending_the_channel_token(clock: FakeClock) -> None:
    with SlackEmulator(
        clock=clock,
        rate_limit=RateLimit(per_second=1, burst=1),
        workspace_rate_limit=RateLimit(per_second=10, burst=2),
    ) as emu:
        a, b, c = (emu.add_channel(name) for name in ("a", "b", "c"))
        web = client(emu)
        web.chat_postMessage(channel=a, text="a")
        web.chat_postMessage(channel=b, text="b")
        err = refused(lambda: web.chat_postMessage(channel=c, text="c"))
        assert (err.response.status_code, emu.rate_limits()[-1]["scope"]) == (429, "workspace")
        clock.advance(0.1)  # one workspace token back; c's own bucket was never spent
        web.chat_postMessage(channel=c, text="c")
        assert [m["text"] for m in emu.messages(c)] == ["c"]


def test_off_and_injected_429s(clock: FakeClock) -> None:
    with SlackEmulator(clock=clock, rate_limit=None) as emu:
        cid = emu.add_channel("general")
        web = client(emu)
        for i in range(20):
            web.chat_postMessage(channel=cid, text=f"m{i}")
        assert emu.rate_limited_count == 0
        emu.inject("chat.postMessage", status=429, retry_after=7)
        err = refused(lambda: web.chat_postMessage(channel=cid, text="x"))
        assert err.response.headers["Retry-After"] == "7"
        assert emu.rate_limits() == [
            {"method": "chat.postMessage", "channel": cid, "scope": "injected", "retry_after": 7}
        ]


# -- the product's own Slack backend against the default limits ----------------------------


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    # One message of tolerance over the default burst for a post that arrives late on a loaded
    # box (see JITTER_TOKEN in test_slack_pacing.py); unpaced, the bursts here overrun it.
    with SlackEmulator(rate_limit=RateLimit(per_second=1.0, burst=5)) as emulator:
        yield emulator


def test_slack_backend_pacing_never_meets_the_default_limit(emu: SlackEmulator) -> None:
    """SlackBackend paces one post a second per channel after its burst of 4: bursts on two
    channels at once, replies, an upload, all land without a single 429."""
    from bridge.chat.protocol import Outgoing
    from bridge.chat.slack.backend import SlackBackend

    one, two = emu.add_channel("one"), emu.add_channel("two")

    async def scenario() -> None:
        backend = SlackBackend(emu.bot_token, emu.app_token, emu.api_url)
        posts = [Outgoing("a1", one, f"one-{i}", f"e1-{i}") for i in range(5)]
        posts += [Outgoing("a2", two, f"two-{i}", f"e2-{i}") for i in range(3)]
        posts.append(Outgoing("a1", one, "x" * 100, "e1-file", as_file=True, filename="o.txt"))
        await asyncio.gather(*(backend.post(p) for p in posts))

    asyncio.run(scenario())
    assert sorted(m["text"] for m in emu.messages(two)) == ["two-0", "two-1", "two-2"]
    assert len(emu.messages(one)) == 6
    assert emu.rate_limited_count == 0


def test_slack_backend_without_pacing_waits_out_retry_after(emu: SlackEmulator) -> None:
    """With its pacing off, the backend bursts into 429s and honours Retry-After: every
    message still lands exactly once, in order."""
    from bridge.chat.protocol import Outgoing
    from bridge.chat.slack.backend import SlackBackend

    cid = emu.add_channel("burst")

    async def scenario() -> None:
        backend = SlackBackend(emu.bot_token, emu.app_token, emu.api_url, min_interval=0)
        for i in range(8):
            await backend.post(Outgoing("a1", cid, f"m{i}", f"e{i}"))

    asyncio.run(scenario())
    assert [m["text"] for m in emu.messages(cid)] == [f"m{i}" for i in range(8)]
    assert emu.rate_limited_count >= 2
    assert {r["scope"] for r in emu.rate_limits()} == {"channel"}
