"""The emulator's web page endpoints: the state the page draws, posting as a human, live ticks.

Posts made here must reach a Socket Mode client as ordinary `message` events, exactly as
`post_as_user` sends them, because the demo's whole point is that the runner cannot tell the
page from Slack. The refusals matter too: the agents behind the page run without permission
prompts, so another site in the same browser must not be able to post.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient

from bridge.devtools.slack_emulator import SlackEmulator
from bridge.devtools.slack_web import EMOJI

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    with SlackEmulator(web_ui=True) as emulator:
        yield emulator


def call(
    emu: SlackEmulator, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    hdrs = {"Content-Type": "application/json"} if body is not None else {}
    req = urllib.request.Request(f"{emu.web_url}{path}", data=data, headers=hdrs | (headers or {}))
    try:
        with OPENER.open(req, timeout=10) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def channel(emu: SlackEmulator, name: str) -> dict[str, Any]:
    status, state = call(emu, "web/state")
    assert status == 200
    return next(c for c in state["channels"] if c["name"] == name)


def test_off_by_default_and_page_is_self_contained() -> None:
    with SlackEmulator() as plain:
        req = urllib.request.Request(plain.base_url)
        with pytest.raises(urllib.error.HTTPError) as err:
            OPENER.open(req, timeout=10)
        assert err.value.code == 404
    with SlackEmulator(web_ui=True) as emu:
        with OPENER.open(emu.web_url, timeout=10) as resp:
            html = resp.read().decode()
            csp = resp.headers["Content-Security-Policy"]
        assert "<title>agentbridge demo" in html
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp
        # No external resource: no src/href to another host, nothing to fetch at run time.
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)


def test_state_nests_threads_with_names_reactions_and_bot_flag(emu: SlackEmulator) -> None:
    you = emu.add_user("you", "You")
    emu.add_channel("demo", members=[you])
    web = WebClient(token=emu.bot_token, base_url=emu.api_url, timeout=10)
    root = emu.post_as_user(you, "demo", "*do* it")
    web.chat_postMessage(channel="#demo", text="ack", thread_ts=root)
    web.chat_postMessage(channel="#demo", text="also here", thread_ts=root, reply_broadcast=True)
    web.reactions_add(channel="#demo", timestamp=root, name="eyes")
    web.chat_postMessage(channel="#demo", text="top-level note")

    status, state = call(emu, "web/state")
    assert status == 200 and re.fullmatch(r"[0-9a-f]{16}", state["version"])
    assert state["users"] == [{"id": you, "name": "you", "display_name": "You"}]
    assert state["names"][you] == "You" and state["bot"]["name"] == "agentbridge"
    msgs = channel(emu, "demo")["messages"]
    assert [m["text"] for m in msgs] == ["*do* it", "also here", "top-level note"]
    first = msgs[0]
    assert (first["author"], first["is_bot"]) == ("You", False)
    assert [(r["text"], r["is_bot"]) for r in first["replies"]] == [
        ("ack", True),
        ("also here", True),
    ]
    assert first["reactions"] == [
        {"name": "eyes", "emoji": EMOJI["eyes"], "count": 1, "users": ["agentbridge"]}
    ]
    assert msgs[1]["subtype"] == "thread_broadcast" and msgs[2]["replies"] == []


def test_post_reaches_socket_mode_as_a_human_message(emu: SlackEmulator) -> None:
    you = emu.add_user("you", "You")
    cid = emu.add_channel("demo", members=[you])
    status, out = call(emu, "web/post", {"user": you, "channel": "demo", "text": "a < b & c"})
    assert status == 200 and out["ok"] and out["channel"] == cid
    # Entities, as Slack's own client sends them; the runner unescapes.
    assert emu.messages(cid)[-1]["text"] == "a &lt; b &amp; c"
    events = [d for d in emu.deliveries("events_api") if d["event_type"] == "message"]
    assert len(events) == 1
    status, reply = call(
        emu, "web/post", {"user": you, "channel": cid, "text": "more", "thread_ts": out["ts"]}
    )
    assert status == 200
    assert [m["text"] for m in emu.thread(cid, out["ts"])] == ["a &lt; b &amp; c", "more"]
    assert channel(emu, "demo")["messages"][0]["replies"][0]["ts"] == reply["ts"]


def test_post_joins_a_non_member_first(emu: SlackEmulator) -> None:
    you = emu.add_user("you", "You")
    cid = emu.add_channel("other")
    status, _ = call(emu, "web/post", {"user": you, "channel": "other", "text": "hi"})
    assert status == 200
    assert you in channel(emu, "other")["members"]
    assert [m.get("subtype") for m in emu.messages(cid)] == ["channel_join", None]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"channel": "demo", "text": "x"}, "required"),
        ({"user": "U0001EMU", "channel": "demo", "text": "  "}, "no_text"),
        ({"user": "U0001EMU", "channel": "nope", "text": "x"}, "channel_not_found"),
        ({"user": "UBOTEMU01", "channel": "demo", "text": "x"}, "cannot_post_as_bot"),
        ({"user": "U0001EMU", "channel": "demo", "text": "x", "thread_ts": "1.2"}, "thread"),
        ({"user": "U0001EMU", "channel": "demo", "text": "x" * 40_001}, "msg_too_long"),
    ],
)
def test_post_rejects_bad_requests(emu: SlackEmulator, body: dict[str, str], error: str) -> None:
    you = emu.add_user("you", "You")
    assert you == "U0001EMU"
    emu.add_channel("demo", members=[you])
    status, out = call(emu, "web/post", body)
    assert status == 400 and error in out["error"]
    assert emu.messages("demo") == []


def test_refuses_other_sites_and_rebound_hosts(emu: SlackEmulator) -> None:
    you = emu.add_user("you", "You")
    emu.add_channel("demo", members=[you])
    body = {"user": you, "channel": "demo", "text": "rm -rf"}
    status, out = call(emu, "web/post", body, {"Origin": "http://evil.example"})
    assert (status, out["error"]) == (403, "cross_origin")
    status, out = call(emu, "web/state", headers={"Host": "evil.example:80"})
    assert (status, out["error"]) == (403, "host_not_allowed")
    req = urllib.request.Request(
        f"{emu.web_url}web/post", data=b"user=x", headers={"Content-Type": "text/plain"}
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        OPENER.open(req, timeout=10)
    assert err.value.code == 415
    same = {"Origin": emu.web_url.rstrip("/")}
    assert call(emu, "web/post", body | {"text": "fine"}, same)[0] == 200
    assert [m["text"] for m in emu.messages("demo")] == ["fine"]


def test_events_tick_on_every_change(emu: SlackEmulator) -> None:
    you = emu.add_user("you", "You")
    cid = emu.add_channel("demo", members=[you])
    with OPENER.open(f"{emu.web_url}web/events", timeout=10) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")

        def next_version() -> str:
            while True:
                line = str(stream.readline().decode())
                if line.startswith("data: "):
                    return line.removeprefix("data: ").strip()

        first = next_version()
        assert first == call(emu, "web/state")[1]["version"]
        emu.post_as_user(you, cid, "hello")
        second = next_version()
        assert second != first and second == call(emu, "web/state")[1]["version"]
        emu.react_as_user(you, cid, emu.messages(cid)[0]["ts"], "tada")
        assert next_version() != second


def test_files_are_served_for_the_page(emu: SlackEmulator) -> None:
    cid = emu.add_channel("demo")
    web = WebClient(token=emu.bot_token, base_url=emu.api_url, timeout=10)
    web.files_upload_v2(
        channel=cid, content="long\n" * 3, filename="out.txt", initial_comment="output"
    )
    msg = channel(emu, "demo")["messages"][-1]
    assert msg["files"][0]["name"] == "out.txt"
    status, body = call(emu, f"web/files/{msg['files'][0]['id']}")
    assert (status, body) == (200, "long\n" * 3)
    assert call(emu, "web/files/F404")[0] == 404


def test_summary_still_describes_the_workspace(emu: SlackEmulator) -> None:
    you = emu.add_user("you", "You")
    emu.add_channel("demo", members=[you])
    emu.post_as_user(you, "demo", "visible in failures")
    text = emu.summary("headline")
    assert text.startswith("headline\nopen sockets: 0")
    assert "#demo" in text and "visible in failures" in text
