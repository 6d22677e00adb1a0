"""Permanent errors on demand: a channel that is gone, a bot that was removed, refused content.

Slack answers these with HTTP 200 and `{"ok": false, "error": ...}`, and they do not go away by
retrying, which is what the bridge's error handling must tell apart from 429s and 5xx.
"""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bridge.devtools.slack_emulator import SlackEmulator


@pytest.fixture
def web(emu: SlackEmulator) -> WebClient:
    return WebClient(token=emu.bot_token, base_url=emu.api_url, timeout=10)


def error_of(call: object) -> tuple[int, str]:
    assert callable(call)
    with pytest.raises(SlackApiError) as err:
        call()
    return err.value.response.status_code, err.value.response["error"]


def test_fail_channel_until_healed(emu: SlackEmulator, web: WebClient) -> None:
    broken, fine = emu.add_channel("broken"), emu.add_channel("fine")
    ts = web.chat_postMessage(channel=broken, text="before")["ts"]
    emu.fail_channel("#broken")  # channel_not_found on every channel method, every time
    for _ in range(3):
        assert error_of(lambda: web.chat_postMessage(channel=broken, text="x")) == (
            200, "channel_not_found",
        )  # fmt: skip
    assert error_of(lambda: web.chat_postMessage(channel="#broken", text="x"))[1] == (
        "channel_not_found"
    )  # by name too
    assert error_of(lambda: web.chat_update(channel=broken, ts=ts, text="x"))[1] == (
        "channel_not_found"
    )
    assert error_of(lambda: web.conversations_history(channel=broken))[1] == "channel_not_found"
    assert error_of(lambda: web.reactions_add(channel=broken, timestamp=ts, name="eyes"))[1] == (
        "channel_not_found"
    )
    web.chat_postMessage(channel=fine, text="other channels work")
    web.auth_test()
    emu.heal_channel(broken)
    web.chat_postMessage(channel=broken, text="after")
    assert [m["text"] for m in emu.messages(broken)] == ["before", "after"]


def test_fail_channel_with_other_errors_and_methods(emu: SlackEmulator, web: WebClient) -> None:
    cid = emu.add_channel("general")
    emu.fail_channel(cid, "invalid_blocks", methods=["chat.postMessage"])
    assert error_of(lambda: web.chat_postMessage(channel=cid, text="x"))[1] == "invalid_blocks"
    history = web.conversations_history(channel=cid)
    assert history["ok"]  # only the named methods fail
    emu.clear_faults()
    web.chat_postMessage(channel=cid, text="ok again")


def test_the_bot_removed_from_a_channel_gets_not_in_channel(
    emu: SlackEmulator, web: WebClient
) -> None:
    alice = emu.add_user("alice")
    public = emu.add_channel("public", [alice])
    private = emu.add_channel("private", [alice], is_private=True)
    for cid in (public, private):
        web.chat_postMessage(channel=cid, text="hello")
        assert emu.leave(emu.bot_user_id, cid) is not None
        assert emu.leave(emu.bot_user_id, cid) is None  # already gone
        assert error_of(lambda c=cid: web.chat_postMessage(channel=c, text="x"))[1] == (
            "not_in_channel"
        )
        assert error_of(lambda c=cid: web.conversations_history(channel=c))[1] == ("not_in_channel")
        assert (
            error_of(lambda c=cid: web.chat_postEphemeral(channel=c, user=alice, text="x"))[1]
            == "not_in_channel"
        )
        assert web.conversations_info(channel=cid)["channel"]["is_member"] is False
        assert emu.messages(cid)[-1]["subtype"] == "channel_leave"
    kinds = [d["event_type"] for d in emu.deliveries("events_api")]
    assert kinds.count("member_left_channel") == 2
    web.conversations_join(channel=public)  # a public channel can be rejoined
    web.chat_postMessage(channel=public, text="back")
    with pytest.raises(SlackApiError, match="method_not_supported_for_channel_type"):
        web.conversations_join(channel=private)


def test_inject_bound_to_a_channel_and_lasting(emu: SlackEmulator, web: WebClient) -> None:
    one, two = emu.add_channel("one"), emu.add_channel("two")
    emu.inject("chat.postMessage", status=200, error="is_archived", times=None, channel="#one")
    emu.inject("chat.postMessage", status=503, times=2)
    assert error_of(lambda: web.chat_postMessage(channel=one, text="x")) == (200, "is_archived")
    assert error_of(lambda: web.chat_postMessage(channel=two, text="x")) == (503, "internal_error")
    assert error_of(lambda: web.chat_postMessage(channel=one, text="x")) == (200, "is_archived")
    assert error_of(lambda: web.chat_postMessage(channel=two, text="x")) == (503, "internal_error")
    web.chat_postMessage(channel=two, text="the 503s are used up")
    for _ in range(3):
        assert error_of(lambda: web.chat_postMessage(channel=one, text="x"))[1] == "is_archived"
    emu.clear_faults()
    web.chat_postMessage(channel=one, text="cleared")
    assert [m["text"] for m in emu.messages(one)] == ["cleared"]


def test_msg_too_long_is_always_enforced(emu: SlackEmulator, web: WebClient) -> None:
    alice = emu.add_user("alice")
    cid = emu.add_channel("general", [alice])
    limit = "x" * 40_000
    ts = web.chat_postMessage(channel=cid, text=limit)["ts"]
    assert error_of(lambda: web.chat_postMessage(channel=cid, text=limit + "y"))[1] == (
        "msg_too_long"
    )
    assert error_of(lambda: web.chat_update(channel=cid, ts=ts, text=limit + "y"))[1] == (
        "msg_too_long"
    )
    assert (
        error_of(lambda: web.chat_postEphemeral(channel=cid, user=alice, text=limit + "y"))[1]
        == "msg_too_long"
    )
    assert len(emu.messages(cid)) == 1 and emu.ephemerals() == []
