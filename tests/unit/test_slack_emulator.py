"""The Slack emulator speaks Slack's wire protocol well enough for the real SDK clients.

Every test drives it with the real slack_sdk `WebClient`, the builtin `SocketModeClient`, or a
slack_bolt `App` + `SocketModeHandler`, so a mismatch with what those clients send or expect
shows up here rather than as a hang in an end-to-end test. Waits are condition waits.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.webhook import WebhookClient

from bridge.devtools.slack_emulator import SlackEmulator


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """slack_sdk honours HTTP(S)_PROXY but not NO_PROXY: loopback calls must not be proxied."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    """Posting limits off: these tests post in bursts; test_slack_emulator_limits has them."""
    with SlackEmulator(ack_timeout=0.4, disconnect_grace=0.2, rate_limit=None) as emulator:
        yield emulator


@pytest.fixture
def web(emu: SlackEmulator) -> WebClient:
    return WebClient(token=emu.bot_token, base_url=emu.api_url, timeout=10)


@pytest.fixture
def people(emu: SlackEmulator) -> tuple[str, str]:
    """(alice, #general)"""
    alice = emu.add_user("alice", "Alice A.")
    return alice, emu.add_channel("general", [alice])


class Collector:
    """A builtin SocketModeClient that records every request and acks unless told not to."""

    def __init__(self, emu: SlackEmulator, web: WebClient) -> None:
        self.requests: list[SocketModeRequest] = []
        self.raw: list[dict[str, Any]] = []
        self.ack: Callable[[SocketModeRequest], bool] = lambda req: True
        self.lock = threading.Lock()
        self.client = SocketModeClient(app_token=emu.app_token, web_client=web, ping_interval=0.5)
        self.client.socket_mode_request_listeners.append(self._on_request)
        self.client.on_message_listeners.append(self._on_message)

    def _on_message(self, raw: str) -> None:
        """Every text frame; `disconnect` never reaches `message_listeners`."""
        with self.lock:
            self.raw.append(json.loads(raw))

    def _on_request(self, client: BaseSocketModeClient, req: SocketModeRequest) -> None:
        with self.lock:
            self.requests.append(req)
        if self.ack(req):
            client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

    def events(self, **match: Any) -> list[SocketModeRequest]:
        with self.lock:
            reqs = list(self.requests)
        return [
            r
            for r in reqs
            if r.type == "events_api"
            and all(r.payload.get("event", {}).get(k) == v for k, v in match.items())
        ]


@pytest.fixture
def sock(emu: SlackEmulator, web: WebClient) -> Iterator[Collector]:
    collector = Collector(emu, web)
    collector.client.connect()
    emu.wait_for(lambda: emu.connection_count() == 1, 10, "socket connected")
    yield collector
    close_quickly(emu, collector.client)


def close_quickly(emu: SlackEmulator, client: SocketModeClient) -> None:
    """`SocketModeClient.close()` waits out its 3 s blocking `recv` unless the server has
    already gone, so reset the socket first (with reconnection off)."""
    client.auto_reconnect_enabled = False
    client.default_auto_reconnect_enabled = False
    emu.drop_sockets()
    # slack_sdk's Connection.disconnect() checks `sock` outside its lock, so closing while
    # its receive thread is still reacting to the reset can raise; let that thread finish.
    emu.wait_for(lambda: not client.is_connected(), 5, "client saw the reset")
    client.close()


# -- Web API ------------------------------------------------------------------------------


def test_auth_tokens_and_unknown_method(emu: SlackEmulator, web: WebClient) -> None:
    auth = web.auth_test()
    assert auth["user_id"] == emu.bot_user_id and auth["bot_id"] == emu.bot_id
    assert emu.bot_user_id.startswith("UBOT") and emu.bot_id.startswith("BBOT")
    assert emu.bot_token.startswith("xoxb-emulator-") and emu.app_token.startswith("xapp-")
    for token, method, error in [
        ("xoxb-wrong", "auth.test", "invalid_auth"),
        (emu.app_token, "auth.test", "not_allowed_token_type"),
        (emu.bot_token, "apps.connections.open", "not_allowed_token_type"),
        (emu.bot_token, "no.suchMethod", "unknown_method"),
    ]:
        with pytest.raises(SlackApiError) as err:
            WebClient(token=token, base_url=emu.api_url).api_call(method)
        assert err.value.response["error"] == error
    url = WebClient(base_url=emu.api_url).apps_connections_open(app_token=emu.app_token)["url"]
    assert url.startswith(f"ws://127.0.0.1:{emu.port}/socket?ticket=")


def test_post_update_threads_and_metadata(
    emu: SlackEmulator, web: WebClient, people: tuple[str, str]
) -> None:
    _, general = people
    meta = {"event_type": "agent_turn", "event_payload": {"agent": "a1", "n": 1}}
    root = web.chat_postMessage(channel="#general", text="root", metadata=meta)
    assert root["channel"] == general and root["message"]["bot_id"] == emu.bot_id
    # form-encoded with metadata as a JSON string, as other clients send it
    form_meta = json.dumps({"event_type": "agent_turn", "event_payload": {"n": 2}})
    form = {"channel": general, "text": "r1", "thread_ts": root["ts"], "metadata": form_meta}
    reply = web.api_call("chat.postMessage", params=form)
    web.chat_postMessage(channel=general, text="r2", thread_ts=reply["ts"])  # reply to a reply
    web.chat_update(channel=general, ts=root["ts"], text="root (edited)")
    assert root["ts"] < reply["ts"]

    history = web.conversations_history(channel=general)["messages"]
    assert [m["text"] for m in history] == ["root (edited)"]
    assert history[0]["reply_count"] == 2 and "metadata" not in history[0]
    with_meta = web.conversations_history(channel=general, include_all_metadata=True)
    assert with_meta["messages"][0]["metadata"] == meta
    thread = web.conversations_replies(channel=general, ts=root["ts"], include_all_metadata=True)
    assert [m["text"] for m in thread["messages"]] == ["root (edited)", "r1", "r2"]
    assert thread["messages"][1]["metadata"]["event_payload"] == {"n": 2}
    assert [m["text"] for m in emu.thread(general, root["ts"])] == ["root (edited)", "r1", "r2"]
    assert len(emu.messages(general, include_threads=False)) == 1
    with pytest.raises(SlackApiError, match="thread_not_found"):
        web.chat_postMessage(channel=general, text="x", thread_ts="1.000001")
    with pytest.raises(SlackApiError, match="channel_not_found"):
        web.chat_postMessage(channel="#nope", text="x")
    logged = emu.calls("chat.postMessage")
    assert logged[0][1]["channel"] == "#general" and "token" not in logged[0][1]


def test_history_and_list_pagination(
    emu: SlackEmulator, web: WebClient, people: tuple[str, str]
) -> None:
    _, general = people
    ts = [web.chat_postMessage(channel=general, text=f"m{i}")["ts"] for i in range(7)]
    paged = web.conversations_history(channel=general, limit=3)  # iterating follows cursors
    pages = [[m["text"] for m in page["messages"]] for page in paged]
    assert pages == [["m6", "m5", "m4"], ["m3", "m2", "m1"], ["m0"]]
    window = web.conversations_history(channel=general, oldest=ts[1], latest=ts[4])
    assert [m["text"] for m in window["messages"]] == ["m3", "m2"]
    window = web.conversations_history(channel=general, oldest=ts[1], latest=ts[4], inclusive=True)
    assert [m["text"] for m in window["messages"]] == ["m4", "m3", "m2", "m1"]

    for i in range(4):
        emu.add_channel(f"pub{i}")
    emu.add_channel("secret", is_private=True)
    names = [c["name"] for p in web.conversations_list(limit=2) for c in p["channels"]]
    assert names == ["general", "pub0", "pub1", "pub2", "pub3"]
    both = web.conversations_list(types="public_channel,private_channel", limit=100)
    assert len(both["channels"]) == 6 and both["response_metadata"]["next_cursor"] == ""
    info = web.conversations_info(channel=general)["channel"]
    assert info["name"] == "general" and info["is_member"] is True
    with pytest.raises(SlackApiError, match="invalid_cursor"):
        web.conversations_history(channel=general, cursor="garbage")


def test_membership_join_reactions_ephemeral_users(
    emu: SlackEmulator, web: WebClient, people: tuple[str, str]
) -> None:
    alice, general = people
    bob = emu.add_user("bob", "Bob B.")
    lobby = emu.add_channel("lobby", [alice], bot_member=False)
    with pytest.raises(SlackApiError, match="not_in_channel"):
        web.chat_postMessage(channel=lobby, text="hi")
    web.conversations_join(channel=lobby)
    assert web.conversations_join(channel=lobby)["warning"] == "already_in_channel"
    ts = web.chat_postMessage(channel=lobby, text="hi")["ts"]
    assert emu.messages(lobby)[0]["subtype"] == "channel_join"

    web.reactions_add(channel=lobby, timestamp=ts, name="eyes")
    with pytest.raises(SlackApiError, match="already_reacted"):
        web.reactions_add(channel=lobby, timestamp=ts, name="eyes")
    web.reactions_add(channel=lobby, timestamp=ts, name="white_check_mark")
    web.reactions_remove(channel=lobby, timestamp=ts, name="eyes")
    with pytest.raises(SlackApiError, match="no_reaction"):
        web.reactions_remove(channel=lobby, timestamp=ts, name="eyes")
    assert emu.reactions(lobby, ts) == {"white_check_mark": [emu.bot_user_id]}

    web.chat_postEphemeral(channel=general, user=alice, text="only you")
    with pytest.raises(SlackApiError, match="user_not_in_channel"):
        web.chat_postEphemeral(channel=general, user=bob, text="nope")
    assert [(e["channel"], e["user"], e["text"]) for e in emu.ephemerals()] == [
        (general, alice, "only you")
    ]
    user = web.users_info(user=alice)["user"]
    assert user["profile"]["display_name"] == "Alice A." and user["name"] == "alice"
    with pytest.raises(SlackApiError, match="user_not_found"):
        web.users_info(user="U404")


def test_files_upload_v2_end_to_end(
    emu: SlackEmulator, web: WebClient, people: tuple[str, str], tmp_path: Path
) -> None:
    _, general = people
    root = web.chat_postMessage(channel=general, text="transcript follows")["ts"]
    path = tmp_path / "transcript.md"
    path.write_bytes(b"# turn 1\nhello\n")
    resp = web.files_upload_v2(
        channel=general,
        file=str(path),
        title="Transcript",
        initial_comment="full log",
        thread_ts=root,
    )
    assert resp["file"]["title"] == "Transcript"
    web.files_upload_v2(channel=general, content="second", filename="b.txt")
    files = emu.files()
    assert [(f["name"], f["content"]) for f in files] == [
        ("transcript.md", b"# turn 1\nhello\n"),
        ("b.txt", b"second"),
    ]
    posted = emu.thread(general, root)[1]
    assert posted["text"] == "full log" and posted["files"][0]["id"] == files[0]["id"]
    methods = [m for m, _ in emu.calls() if m.startswith("files.")]
    assert methods == ["files.getUploadURLExternal", "files.completeUploadExternal"] * 2


# -- faults -------------------------------------------------------------------------------


def test_rate_limit_and_server_faults(
    emu: SlackEmulator, web: WebClient, people: tuple[str, str]
) -> None:
    _, general = people
    emu.inject("chat.postMessage", status=429, retry_after=0, times=1)
    with pytest.raises(SlackApiError) as err:
        web.chat_postMessage(channel=general, text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "0"
    assert err.value.response["error"] == "ratelimited"

    patient = WebClient(token=emu.bot_token, base_url=emu.api_url)
    patient.retry_handlers.append(RateLimitErrorRetryHandler())
    emu.inject("chat.postMessage", status=429, retry_after=0)
    assert patient.chat_postMessage(channel=general, text="after a 429")["ok"]
    assert len(emu.calls("chat.postMessage")) == 3
    assert [m["text"] for m in emu.messages(general)] == ["after a 429"]

    emu.inject("auth.test", status=503)
    with pytest.raises(SlackApiError) as err:
        web.auth_test()
    assert err.value.response.status_code == 503
    # a reset connection is retried once by slack_sdk's default ConnectionErrorRetryHandler
    emu.inject("auth.test", status=0)
    assert web.auth_test()["ok"]
    emu.inject("auth.test", status=0, times=2)
    with pytest.raises((ConnectionError, OSError)):
        web.auth_test()
    emu.inject("users.info", status=200, error="fatal_error")
    with pytest.raises(SlackApiError, match="fatal_error"):
        web.users_info(user=emu.bot_user_id)


# -- Socket Mode --------------------------------------------------------------------------


def test_socket_hello_events_and_acks(
    emu: SlackEmulator, web: WebClient, people: tuple[str, str], sock: Collector
) -> None:
    alice, general = people
    ts = emu.post_as_user(alice, general, "hello <@" + emu.bot_user_id + ">")
    reply_ts = emu.post_as_user(alice, general, "in thread", thread_ts=ts)
    emu.wait_for(lambda: len(sock.events(type="message")) == 2, 5, "two message events")
    assert sock.raw[0]["type"] == "hello" and sock.raw[0]["num_connections"] == 1
    first, second = sock.events(type="message")
    payload = first.payload
    assert payload["type"] == "event_callback" and payload["event_id"].startswith("Ev")
    assert payload["team_id"] == emu.team_id and isinstance(payload["event_time"], int)
    event = payload["event"]
    assert [event[k] for k in ("channel", "user", "ts", "event_ts")] == [general, alice, ts, ts]
    assert event["channel_type"] == "channel" and "thread_ts" not in event
    assert second.payload["event"]["thread_ts"] == ts and second.payload["event"]["ts"] == reply_ts
    assert first.retry_attempt == 0 and first.accepts_response_payload is False
    emu.wait_for(lambda: len(sock.events(type="app_mention")) == 1, 5, "app_mention")
    emu.wait_for(lambda: all(d["acked"] for d in emu.deliveries()), 5, "all acked")
    assert len({d["event_id"] for d in emu.deliveries()}) == 3

    web.chat_postMessage(channel=general, text="from the bot", thread_ts=ts)
    emu.wait_for(lambda: sock.events(text="from the bot"), 5, "bot echo")
    echo = sock.events(text="from the bot")[0].payload["event"]
    assert echo["bot_id"] == emu.bot_id and echo["user"] == emu.bot_user_id
    assert echo["app_id"] == emu.app_id and "subtype" not in echo and echo["thread_ts"] == ts


def test_edit_delete_join_events(
    emu: SlackEmulator, people: tuple[str, str], sock: Collector
) -> None:
    alice, general = people
    bob = emu.add_user("bob")
    ts = emu.post_as_user(alice, general, "tpyo")
    emu.edit_as_user(alice, general, ts, "typo")
    emu.delete_as_user(alice, general, ts)
    emu.join(bob, general)
    emu.react_as_user(bob, general, emu.post_as_user(bob, general, "hi"), "wave")
    subtypes = ["message_changed", "message_deleted", "channel_join"]
    emu.wait_for(lambda: all(sock.events(subtype=s) for s in subtypes), 5, "subtype events")
    changed = sock.events(subtype="message_changed")[0].payload["event"]
    assert changed["message"]["text"] == "typo" and changed["previous_message"]["text"] == "tpyo"
    assert sock.events(subtype="message_deleted")[0].payload["event"]["deleted_ts"] == ts
    emu.wait_for(lambda: sock.events(type="member_joined_channel", user=bob), 5, "joined")
    emu.wait_for(lambda: sock.events(type="reaction_added", reaction="wave"), 5, "reaction")
    with pytest.raises(ValueError, match="join"):
        emu.post_as_user(emu.add_user("carol"), general, "not a member")


def test_unacked_events_are_redelivered_then_dropped(
    emu: SlackEmulator, people: tuple[str, str], sock: Collector
) -> None:
    alice, general = people
    sock.ack = lambda req: bool(req.retry_attempt)  # lose the first ack only
    emu.post_as_user(alice, general, "are you there?")
    emu.wait_for(lambda: emu.deliveries()[0]["acked"], 5, "ack of the retry")
    first, retry = sock.events(text="are you there?")
    assert first.payload["event_id"] == retry.payload["event_id"]
    assert first.envelope_id != retry.envelope_id
    assert (retry.retry_attempt, retry.retry_reason) == (1, "timeout")
    assert emu.deliveries()[0]["acked_envelope_ids"] == [retry.envelope_id]

    sock.ack = lambda req: False
    emu.post_as_user(alice, general, "ignored")
    emu.wait_for(lambda: emu.deliveries()[-1]["gave_up"], 10, "gave up after retries")
    assert [r.retry_attempt for r in sock.events(text="ignored")] == [0, 1, 2, 3]

    sock.ack = lambda req: True
    event_id = emu.redeliver_last()
    emu.wait_for(lambda: emu.deliveries()[-1]["acked"], 5, "manual redelivery acked")
    again = sock.events(text="ignored")[-1]
    assert again.payload["event_id"] == event_id and again.retry_attempt == 4


def test_slash_command_ack_and_response_url(
    emu: SlackEmulator, web: WebClient, people: tuple[str, str], sock: Collector
) -> None:
    alice, general = people
    sock.ack = lambda req: req.type != "slash_commands"  # answered by hand below
    sent = emu.slash_command(alice, general, "/agent", "status a1")
    emu.wait_for(lambda: any(r.type == "slash_commands" for r in sock.requests), 5, "command")
    req = next(r for r in sock.requests if r.type == "slash_commands")
    assert req.accepts_response_payload is True and req.payload == sent
    fields = [req.payload[k] for k in ("command", "text", "user_name", "channel_name")]
    assert fields == ["/agent", "status a1", "alice", "general"]
    assert req.payload["trigger_id"] and req.payload["response_url"].startswith(emu.base_url)
    sock.client.send_socket_mode_response(
        SocketModeResponse(envelope_id=req.envelope_id, payload={"text": "working on it"})
    )
    emu.wait_for(lambda: emu.responses(), 5, "ack payload")
    WebhookClient(sent["response_url"]).send(text="a1 is idle", response_type="in_channel")
    assert [(r["source"], r["body"]["text"]) for r in emu.responses()] == [
        ("ack", "working on it"),
        ("response_url", "a1 is idle"),
    ]
    assert emu.messages(general)[-1]["text"] == "a1 is idle"


def test_drop_disconnect_and_refused_reconnects(
    emu: SlackEmulator, people: tuple[str, str], sock: Collector
) -> None:
    alice, general = people
    emu.drop_sockets()
    emu.wait_for(lambda: emu.connection_count() == 0, 5, "socket dropped")
    emu.post_as_user(alice, general, "after drop")  # queued until the client is back
    emu.wait_for(lambda: sock.events(text="after drop"), 15, "event after reconnect")
    assert len(emu.calls("apps.connections.open")) == 2

    emu.disconnect("refresh_requested")
    emu.wait_for(lambda: len(emu.calls("apps.connections.open")) == 3, 10, "refresh reconnect")
    assert any(m.get("type") == "disconnect" for m in sock.raw)
    emu.post_as_user(alice, general, "after refresh")
    emu.wait_for(lambda: sock.events(text="after refresh"), 10, "event after refresh")
    emu.wait_for(lambda: emu.connection_count() == 1, 5, "old socket closed")

    emu.fail_connections_open(times=2)
    emu.drop_sockets()
    emu.post_as_user(alice, general, "after refusals")
    emu.wait_for(lambda: sock.events(text="after refusals"), 20, "event after refusals")
    opens = emu.calls("apps.connections.open")
    assert len(opens) >= 6


def test_bolt_app_over_socket_mode(emu: SlackEmulator, people: tuple[str, str]) -> None:
    from slack_bolt import App
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    alice, general = people
    client = WebClient(token=emu.bot_token, base_url=emu.api_url)
    app = App(client=client)  # bolt calls auth.test here, with the client's token
    seen: list[dict[str, Any]] = []

    @app.event("message")
    def on_message(event: dict[str, Any], say: Any) -> None:
        seen.append(event)
        say(text=f"echo: {event['text']}", thread_ts=event["ts"])

    handler = SocketModeHandler(app, emu.app_token, ping_interval=1)
    handler.connect()  # type: ignore[no-untyped-call]
    try:
        ts = emu.post_as_user(alice, general, "ping")
        emu.wait_for(lambda: len(emu.thread(general, ts)) == 2, 10, "bolt reply in thread")
        assert emu.thread(general, ts)[1]["text"] == "echo: ping"
        emu.wait_for(lambda: all(d["acked"] for d in emu.deliveries()), 5, "bolt acked all")
        assert [e["text"] for e in seen] == ["ping"]  # its own echo was ignored by bolt
    finally:
        close_quickly(emu, handler.client)


def test_runs_inside_an_existing_loop() -> None:
    from slack_sdk.web.async_client import AsyncWebClient

    async def scenario() -> None:
        async with SlackEmulator() as emu:
            alice = emu.add_user("alice")
            general = emu.add_channel("general", [alice])
            client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
            await client.chat_postMessage(channel=general, text="async hello")
            history = await client.conversations_history(channel=general, limit=1)
            assert history["messages"][0]["text"] == "async hello"
            emu.post_as_user(alice, general, "from a human")
            await asyncio.to_thread(emu.wait_for, lambda: len(emu.deliveries()) == 2, 5)

    asyncio.run(scenario())


def test_wait_for_times_out_with_a_summary(emu: SlackEmulator, people: tuple[str, str]) -> None:
    alice, general = people
    emu.post_as_user(alice, general, "something happened")
    started = time.monotonic()
    with pytest.raises(TimeoutError) as err:
        emu.wait_for(lambda: False, 0.3, "the impossible")
    assert time.monotonic() - started < 3
    text = str(err.value)
    assert "the impossible" in text and "#general" in text and "something happened" in text
    assert json.dumps(emu.deliveries())  # inspection results are plain JSON
