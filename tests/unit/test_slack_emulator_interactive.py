"""Block Kit, clicks, response URLs and modals in the emulator, shaped like Slack's.

Payload shapes are checked on the raw envelopes a builtin SocketModeClient receives; the flows
(a button answered through `respond`, a modal for a free-text "Other" answer) run through a real
slack_bolt App, so what works here works with the listeners the product will register.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bridge.devtools.slack_emulator import SlackEmulator
from tests.unit.test_slack_emulator import Collector, close_quickly


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(clock: FakeClock) -> Iterator[SlackEmulator]:
    with SlackEmulator(ack_timeout=0.4, rate_limit=None, clock=clock) as emulator:
        yield emulator


@pytest.fixture
def web(emu: SlackEmulator) -> WebClient:
    return WebClient(token=emu.bot_token, base_url=emu.api_url, timeout=10)


@pytest.fixture
def people(emu: SlackEmulator) -> tuple[str, str]:
    alice = emu.add_user("alice", "Alice A.")
    return alice, emu.add_channel("general", [alice])


@pytest.fixture
def sock(emu: SlackEmulator, web: WebClient) -> Iterator[Collector]:
    collector = Collector(emu, web)
    collector.client.connect()
    emu.wait_for(lambda: emu.connection_count() == 1, 10, "socket connected")
    yield collector
    close_quickly(emu, collector.client)


def text(s: str) -> dict[str, str]:
    return {"type": "plain_text", "text": s}


def option(value: str) -> dict[str, Any]:
    return {"text": text(value.title()), "value": value}


QUESTION = [
    {"type": "section", "block_id": "q", "text": {"type": "mrkdwn", "text": "*Which tests?*"}},
    {
        "type": "actions",
        "block_id": "pick",
        "elements": [
            {
                "type": "checkboxes",
                "action_id": "suites",
                "options": [option("unit"), option("e2e"), option("bench")],
                "initial_options": [option("unit")],
            },
            {
                "type": "static_select",
                "action_id": "when",
                "placeholder": text("When?"),
                "options": [option("now"), option("tonight")],
            },
        ],
    },
    {
        "type": "actions",
        "block_id": "go",
        "elements": [
            {"type": "button", "action_id": "run", "text": text("Run"), "value": "run-42"},
            {"type": "button", "text": text("Other…"), "value": "other", "style": "danger"},
        ],
    },
]


def interactive(sock: Collector, kind: str) -> list[dict[str, Any]]:
    with sock.lock:
        reqs = list(sock.requests)
    return [r.payload for r in reqs if r.type == "interactive" and r.payload["type"] == kind]


# -- blocks --------------------------------------------------------------------------------


def test_blocks_are_checked_and_completed_like_slack(
    emu: SlackEmulator, web: WebClient, people: tuple[str, str]
) -> None:
    alice, general = people
    posted = web.chat_postMessage(channel=general, text="fallback", blocks=QUESTION)
    other = posted["message"]["blocks"][2]["elements"][1]
    assert other["action_id"]  # Slack fills in what the app left out
    assert all(b["block_id"] for b in emu.messages(general)[0]["blocks"])

    bad = [
        {"type": "nope"},
        {"type": "actions", "elements": [{"type": "button", "text": text("x" * 76)}]},
        {"type": "section", "block_id": "q", "text": {"type": "mrkdwn", "text": "a"}},
        {"type": "section", "block_id": "q", "text": {"type": "mrkdwn", "text": "b"}},
        {
            "type": "actions",
            "elements": [
                {"type": "static_select", "options": [option("a")], "initial_option": option("z")}
            ],
        },
    ]
    with pytest.raises(SlackApiError) as err:
        web.chat_postMessage(channel=general, text="x", blocks=bad)
    answer = err.value.response.data
    assert answer["error"] == "invalid_blocks"
    assert [e.rsplit("[json-pointer:", 1)[1] for e in answer["errors"]] == [
        "/blocks/0/type]",
        "/blocks/1/elements/0/text/text]",
        "/blocks/3/block_id]",
        "/blocks/4/elements/0/initial_option]",
    ]
    assert answer["response_metadata"]["messages"][0].startswith("[ERROR] ")
    too_many = [{"type": "divider"}] * 51
    with pytest.raises(SlackApiError, match="invalid_blocks"):
        web.chat_postMessage(channel=general, text="x", blocks=too_many)
    with pytest.raises(SlackApiError, match="invalid_blocks_format"):
        web.api_call("chat.postMessage", json={"channel": general, "blocks": {"type": "x"}})
    with pytest.raises(SlackApiError, match="msg_too_long"):
        web.chat_postMessage(channel=general, text="x" * 40_001)
    web.chat_postMessage(channel=general, text="x" * 40_000)
    with pytest.raises(SlackApiError, match="invalid_blocks"):
        web.chat_postEphemeral(channel=general, user=alice, text="x", blocks=bad)
    assert len(emu.messages(general)) == 2 and emu.ephemerals() == []


def test_chat_update_replaces_blocks_and_resets_choices(
    emu: SlackEmulator, web: WebClient, people: tuple[str, str]
) -> None:
    alice, general = people
    ts = web.chat_postMessage(channel=general, text="q", blocks=QUESTION)["ts"]
    emu.click(alice, general, ts, "suites", selected_options=["e2e"])
    web.chat_update(channel=general, ts=ts, text="q", blocks=QUESTION[:2])
    assert len(emu.messages(general)[0]["blocks"]) == 2
    payload = emu.click(alice, general, ts, "when", "now")
    assert payload["state"]["values"]["pick"]["suites"]["selected_options"] == [option("unit")]
    web.chat_update(channel=general, ts=ts, text="answered", blocks=[])
    assert "blocks" not in emu.messages(general)[0]
    with pytest.raises(LookupError):
        emu.click(alice, general, ts, "when", "now")


# -- clicks --------------------------------------------------------------------------------


def test_click_payloads_are_shaped_like_slacks(
    emu: SlackEmulator, web: WebClient, people: tuple[str, str], sock: Collector
) -> None:
    alice, general = people
    ts = web.chat_postMessage(channel=general, text="Which tests?", blocks=QUESTION)["ts"]
    ticked = emu.click(alice, general, ts, "suites", selected_options=["unit", "e2e"])
    chosen = emu.click(alice, general, ts, "when", "tonight")
    clicked = emu.click(alice, general, ts, "run")
    emu.wait_for(lambda: len(interactive(sock, "block_actions")) == 3, 5, "three clicks")
    assert interactive(sock, "block_actions") == [ticked, chosen, clicked]
    with sock.lock:
        assert all(r.accepts_response_payload is False for r in sock.requests)

    assert ticked["actions"][0]["selected_options"] == [option("unit"), option("e2e")]
    assert ticked["actions"][0]["type"] == "checkboxes"
    select = chosen["actions"][0]
    assert select["selected_option"] == option("tonight")
    assert select["placeholder"] == text("When?") and select["block_id"] == "pick"

    p = clicked
    assert p["type"] == "block_actions" and p["api_app_id"] == emu.app_id and p["token"]
    assert p["user"] == {"id": alice, "username": "alice", "name": "alice", "team_id": emu.team_id}
    assert p["container"] == {
        "type": "message", "message_ts": ts, "channel_id": general, "is_ephemeral": False
    }  # fmt: skip
    assert p["team"]["id"] == emu.team_id and p["channel"] == {"id": general, "name": "general"}
    assert p["message"]["ts"] == ts and p["message"]["blocks"][0]["block_id"] == "q"
    assert p["message"]["bot_id"] == emu.bot_id and "metadata" not in p["message"]
    assert p["trigger_id"].count(".") == 2
    assert p["response_url"].startswith(emu.base_url)
    action = p["actions"][0]
    assert set(action) == {"action_id", "block_id", "text", "value", "type", "action_ts"}
    assert (action["action_id"], action["block_id"], action["value"]) == ("run", "go", "run-42")
    assert action["text"] == text("Run") and action["type"] == "button"
    assert p["state"]["values"] == {  # every stateful element, as alice left it
        "pick": {
            "suites": {"type": "checkboxes", "selected_options": [option("unit"), option("e2e")]},
            "when": {"type": "static_select", "selected_option": option("tonight")},
        }
    }
    bob = emu.add_user("bob")
    emu.join(bob, general)
    fresh = emu.click(bob, general, ts, "run")["state"]["values"]["pick"]
    assert fresh["suites"]["selected_options"] == [option("unit")]  # per person: initial
    assert fresh["when"] == {"type": "static_select", "selected_option": None}

    with pytest.raises(LookupError):
        emu.click(alice, general, ts, "no_such_action")
    with pytest.raises(ValueError, match="no option"):
        emu.click(alice, general, ts, "when", "someday")
    with pytest.raises(ValueError, match="join"):
        emu.click(emu.add_user("carol"), general, ts, "run")


def test_response_url_and_ephemeral_clicks_through_bolt(
    emu: SlackEmulator, web: WebClient, people: tuple[str, str]
) -> None:
    from slack_bolt import App
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    alice, general = people
    app = App(client=web)
    seen: list[dict[str, Any]] = []

    @app.action("run")
    def on_run(ack: Any, body: dict[str, Any], respond: Any) -> None:
        ack()
        seen.append(body)
        respond(replace_original=True, text="Running", blocks=[QUESTION[0]])

    @app.action("later")
    def on_later(ack: Any, body: dict[str, Any], respond: Any) -> None:
        ack()
        seen.append(body)
        if body["container"]["is_ephemeral"]:
            respond(delete_original=True)
        else:
            respond("Noted, I will ask again tonight")  # ephemeral, Slack's default

    handler = SocketModeHandler(app, emu.app_token, ping_interval=1)
    handler.connect()  # type: ignore[no-untyped-call]
    try:
        later = {"type": "button", "action_id": "later", "text": text("Later")}
        blocks = [*QUESTION, {"type": "actions", "block_id": "snooze", "elements": [later]}]
        ts = web.chat_postMessage(channel=general, text="Which tests?", blocks=blocks)["ts"]
        emu.click(alice, general, ts, "later")
        emu.wait_for(lambda: emu.ephemerals(user=alice), 10, "ephemeral answer")
        note = emu.ephemerals(user=alice)[0]
        assert (note["text"], note["source"], note["channel"]) == (
            "Noted, I will ask again tonight",
            "response_url",
            general,
        )
        emu.click(alice, general, ts, "run")
        emu.wait_for(lambda: emu.messages(general)[0]["text"] == "Running", 10, "replaced")
        assert [b["block_id"] for b in emu.messages(general)[0]["blocks"]] == ["q"]

        # a button in an ephemeral message: no `message` in the payload, and it can go away
        eph = web.chat_postEphemeral(channel=general, user=alice, text="x", blocks=blocks[3:])
        emu.click(alice, general, eph["message_ts"], "later")
        emu.wait_for(lambda: len(seen) == 3, 10, "ephemeral click handled")
        assert seen[2]["container"]["is_ephemeral"] is True and "message" not in seen[2]
        emu.wait_for(
            lambda: all(e["message_ts"] != eph["message_ts"] for e in emu.ephemerals()), 10, "gone"
        )
        emu.wait_for(lambda: all(d["acked"] for d in emu.deliveries("interactive")), 5, "acks")
    finally:
        close_quickly(emu, handler.client)
    url = seen[0]["response_url"]  # a response_url takes 5 answers, like Slack's
    answers = [WebhookClient(url).send(text=f"n{i}").status_code for i in range(5)]
    assert answers == [200, 200, 200, 200, 404]  # one was already used by the handler


# -- modals --------------------------------------------------------------------------------

OTHER_MODAL = {
    "type": "modal",
    "callback_id": "other_answer",
    "private_metadata": json.dumps({"question": "q-42"}),
    "title": text("Your answer"),
    "submit": text("Send"),
    "close": text("Cancel"),
    "blocks": [
        {
            "type": "input",
            "block_id": "answer",
            "label": text("What should I do instead?"),
            "element": {"type": "plain_text_input", "action_id": "text", "multiline": True},
        },
        {
            "type": "input",
            "block_id": "urgency",
            "optional": True,
            "label": text("How urgent?"),
            "element": {"type": "radio_buttons", "options": [option("low"), option("high")]},
        },
    ],
}


def test_other_answer_modal_through_bolt(
    emu: SlackEmulator, web: WebClient, people: tuple[str, str]
) -> None:
    from slack_bolt import App
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    alice, general = people
    app = App(client=web)
    submitted: list[dict[str, Any]] = []
    opened = threading.Event()

    @app.action("other")
    def on_other(ack: Any, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=OTHER_MODAL)
        opened.set()

    @app.view("other_answer")
    def on_submit(ack: Any, view: dict[str, Any]) -> None:
        answer = view["state"]["values"]["answer"]["text"]["value"]
        submitted.append(view)
        if len(answer) < 5:
            ack(response_action="errors", errors={"answer": "Say a bit more"})
        else:
            ack()

    handler = SocketModeHandler(app, emu.app_token, ping_interval=1)
    handler.connect()  # type: ignore[no-untyped-call]
    try:
        blocks = [
            {
                "type": "actions",
                "block_id": "go",
                "elements": [{"type": "button", "action_id": "other", "text": text("Other…")}],
            }
        ]
        ts = web.chat_postMessage(channel=general, text="Which tests?", blocks=blocks)["ts"]
        emu.click(alice, general, ts, "other")
        emu.wait_for(lambda: emu.views(user=alice), 10, "modal opened")
        view = emu.views(user=alice)[0]
        assert view["state"] == "open" and view["view"]["title"] == text("Your answer")
        vid = view["id"]
        with pytest.raises(ValueError, match="required"):
            emu.submit_view(alice, vid, {"urgency": "high"})  # Slack's client would refuse
        emu.submit_view(alice, vid, {"answer": "no"})
        emu.wait_for(lambda: emu.view(vid)["errors"], 10, "validation errors shown")
        assert emu.view(vid)["state"] == "open"
        assert emu.view(vid)["errors"] == {"answer": "Say a bit more"}
        payload = emu.submit_view(
            alice, vid, {"answer": "run only the e2e suite", "urgency": "high"}
        )
        emu.wait_for(lambda: emu.view(vid)["state"] == "closed", 10, "modal closed")
    finally:
        close_quickly(emu, handler.client)
    assert opened.is_set() and len(submitted) == 2
    assert payload["type"] == "view_submission" and payload["user"]["id"] == alice
    assert payload["trigger_id"] and payload["response_urls"] == []
    sent = payload["view"]
    assert sent["id"] == vid and sent["callback_id"] == "other_answer"
    assert json.loads(sent["private_metadata"]) == {"question": "q-42"}
    assert sent["state"]["values"]["answer"] == {
        "text": {"type": "plain_text_input", "value": "run only the e2e suite"}
    }
    urgency = sent["state"]["values"]["urgency"]
    assert list(urgency.values()) == [{"type": "radio_buttons", "selected_option": option("high")}]
    assert submitted[1] == sent


def test_trigger_ids_and_view_checks(
    emu: SlackEmulator, web: WebClient, people: tuple[str, str], clock: FakeClock
) -> None:
    alice, general = people
    trigger = emu.slash_command(alice, general, "/agent", "ask")["trigger_id"]
    view = web.views_open(trigger_id=trigger, view=OTHER_MODAL)["view"]
    assert view["root_view_id"] == view["id"] and view["previous_view_id"] is None
    assert view["blocks"][1]["element"]["action_id"]  # filled in
    with pytest.raises(SlackApiError, match="exchanged_trigger_id"):
        web.views_open(trigger_id=trigger, view=OTHER_MODAL)
    with pytest.raises(SlackApiError, match="invalid_trigger_id"):
        web.views_open(trigger_id="1.2.3", view=OTHER_MODAL)
    stale = emu.slash_command(alice, general, "/agent", "ask")["trigger_id"]
    clock.now += 3.5
    with pytest.raises(SlackApiError, match="expired_trigger_id"):
        web.views_open(trigger_id=stale, view=OTHER_MODAL)

    fresh = emu.slash_command(alice, general)["trigger_id"]
    broken = {**OTHER_MODAL, "title": text("x" * 25)}
    del broken["submit"]
    with pytest.raises(SlackApiError) as err:
        web.views_open(trigger_id=fresh, view=broken)
    messages = err.value.response["response_metadata"]["messages"]
    assert err.value.response["error"] == "invalid_arguments" and len(messages) == 2
    assert any("submit is required" in m for m in messages)

    pushed = web.views_push(trigger_id=fresh, view={**OTHER_MODAL, "notify_on_close": True})
    top = pushed["view"]
    assert (top["previous_view_id"], top["root_view_id"]) == (view["id"], view["id"])
    with pytest.raises(SlackApiError, match="hash_conflict"):
        web.views_update(view_id=top["id"], hash="stale", view=OTHER_MODAL)
    updated = web.views_update(view_id=top["id"], hash=top["hash"], view=OTHER_MODAL)["view"]
    assert updated["id"] == top["id"] and updated["notify_on_close"] is False
    assert emu.close_view(alice, top["id"]) is None  # no notify_on_close after the update
    assert [v["state"] for v in emu.views(user=alice)] == ["open", "closed"]


def test_an_unacked_submission_leaves_the_modal_open(
    emu: SlackEmulator, web: WebClient, people: tuple[str, str], sock: Collector
) -> None:
    alice, general = people
    trigger = emu.slash_command(alice, general)["trigger_id"]
    vid = web.views_open(trigger_id=trigger, view=OTHER_MODAL)["view"]["id"]
    sock.ack = lambda req: req.type != "interactive"  # the app is too slow this time
    emu.submit_view(alice, vid, {"answer": "first try"})
    assert emu.view(vid)["state"] == "submitting"
    emu.wait_for(lambda: emu.view(vid)["state"] == "open", 10, "back to open after no ack")
    assert emu.deliveries("interactive")[-1]["gave_up"] is True
    sock.ack = lambda req: True
    emu.submit_view(alice, vid, {"answer": "second try"})
    emu.wait_for(lambda: emu.view(vid)["state"] == "closed", 10, "closed by the ack")
