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


# -- Block Kit, ephemerals and modals on the page -----------------------------------------

BUTTONS = [
    {"type": "section", "block_id": "q", "text": {"type": "mrkdwn", "text": "*Deploy?*"}},
    {
        "type": "actions",
        "block_id": "a",
        "elements": [
            {
                "type": "button",
                "action_id": "yes",
                "text": {"type": "plain_text", "text": "Yes"},
                "value": "y",
            },
            {
                "type": "checkboxes",
                "action_id": "envs",
                "options": [
                    {"text": {"type": "plain_text", "text": e}, "value": e}
                    for e in ("staging", "prod")
                ],
            },
        ],
    },
]


def test_state_carries_blocks_ephemerals_choices_and_open_modals(emu: SlackEmulator) -> None:
    you = emu.add_user("you", "You")
    cid = emu.add_channel("demo", members=[you])
    web = WebClient(token=emu.bot_token, base_url=emu.api_url, timeout=10)
    ts = web.chat_postMessage(channel=cid, text="Deploy?", blocks=BUTTONS)["ts"]
    web.chat_postEphemeral(channel=cid, user=you, text="only for you", blocks=BUTTONS[:1])
    emu.click(you, cid, ts, "envs", selected_options=["prod"])
    trigger = emu.slash_command(you, cid)["trigger_id"]
    modal = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Other"},
        "submit": {"type": "plain_text", "text": "Send"},
        "blocks": [
            {
                "type": "input",
                "block_id": "answer",
                "label": {"type": "plain_text", "text": "Answer"},
                "element": {"type": "plain_text_input", "action_id": "text"},
            }
        ],
    }
    view_id = web.views_open(trigger_id=trigger, view=modal)["view"]["id"]

    demo = channel(emu, "demo")
    assert [b["block_id"] for b in demo["messages"][0]["blocks"]] == ["q", "a"]
    assert demo["ephemerals"][0]["user"] == you and demo["ephemerals"][0]["text"] == "only for you"
    chosen = demo["block_state"][ts][you]["a"]["envs"]["selected_options"]
    assert [o["value"] for o in chosen] == ["prod"]
    views = call(emu, "web/state")[1]["views"]
    assert [(v["id"], v["user"], v["state"]) for v in views] == [(view_id, you, "open")]
    assert views[0]["submit"]["text"] == "Send"


def test_page_clicks_and_submissions_go_through_the_emulator(emu: SlackEmulator) -> None:
    you = emu.add_user("you", "You")
    cid = emu.add_channel("demo")  # "you" is not a member yet: the page joins first
    web = WebClient(token=emu.bot_token, base_url=emu.api_url, timeout=10)
    ts = web.chat_postMessage(channel=cid, text="Deploy?", blocks=BUTTONS)["ts"]
    body = {"user": you, "channel": "demo", "ts": ts, "action_id": "envs", "block_id": "a"}
    assert call(emu, "web/action", body | {"selected_options": ["staging", "prod"]})[0] == 200
    assert call(emu, "web/action", body | {"action_id": "yes"})[0] == 200
    clicks = emu.deliveries("interactive")
    assert [d["payload_type"] for d in clicks] == ["block_actions", "block_actions"]
    assert you in channel(emu, "demo")["members"]
    direct = emu.click(you, cid, ts, "yes")  # what a test does: the same payload
    assert direct["state"]["values"]["a"]["envs"]["type"] == "checkboxes"
    assert [o["value"] for o in direct["state"]["values"]["a"]["envs"]["selected_options"]] == [
        "staging",
        "prod",
    ]
    for bad, error in [
        (body | {"action_id": "nope"}, "no element"),
        (body | {"ts": "1.000001"}, "no message"),
        (body | {"selected_options": "prod"}, "must be a list"),
        ({"user": you}, "required"),
    ]:
        status, out = call(emu, "web/action", bad)
        assert status == 400 and error in out["error"]

    trigger = emu.click(you, cid, ts, "yes")["trigger_id"]
    modal = {
        "type": "modal",
        "notify_on_close": True,
        "title": {"type": "plain_text", "text": "Other"},
        "submit": {"type": "plain_text", "text": "Send"},
        "blocks": [
            {
                "type": "input",
                "block_id": "answer",
                "label": {"type": "plain_text", "text": "Answer"},
                "element": {"type": "plain_text_input", "action_id": "text"},
            }
        ],
    }
    view_id = web.views_open(trigger_id=trigger, view=modal)["view"]["id"]
    status, out = call(emu, "web/view", {"user": you, "view_id": view_id, "values": {}})
    assert status == 400 and "required" in out["error"]
    values = {"answer": {"text": "ship it friday"}}
    assert call(emu, "web/view", {"user": you, "view_id": view_id, "values": values})[0] == 200
    sent = emu.deliveries("interactive")[-1]["payload"]
    assert sent["view"]["state"]["values"]["answer"]["text"]["value"] == "ship it friday"
    assert emu.view(view_id)["state"] == "submitting"  # no app here to ack it
    assert call(emu, "web/view_close", {"user": you, "view_id": view_id})[0] == 200
    assert emu.deliveries("interactive")[-1]["payload_type"] == "view_closed"
    assert call(emu, "web/state")[1]["views"] == []
