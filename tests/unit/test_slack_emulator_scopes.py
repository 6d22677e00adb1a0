"""Scopes in the emulator, as a real workspace enforces them.

The bot token holds the manifest's scopes (``deploy/slack-app-manifest.yaml``), every answer
names them in ``x-oauth-scopes``, a call without its scope answers ``missing_scope`` with
``needed`` and ``provided``, and a file download without ``files:read`` answers the sign-in
page (HTTP 200, HTML) instead of the file.
"""

from __future__ import annotations

import pytest
import yaml
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bridge.devtools.slack_emulator import SlackEmulator
from bridge.devtools.slack_emulator_scopes import MANIFEST, manifest_scopes
from tests.unit.test_slack_emulator_files import get


def test_the_bot_token_holds_the_manifests_scopes(emu: SlackEmulator) -> None:
    wanted = set(yaml.safe_load(MANIFEST.read_text())["oauth_config"]["scopes"]["bot"])
    assert emu.bot_scopes == wanted == manifest_scopes()
    auth = WebClient(token=emu.bot_token, base_url=emu.api_url).auth_test()
    assert set(auth.headers["X-OAuth-Scopes"].split(",")) == wanted


def test_a_call_without_its_scope_is_missing_scope(emu: SlackEmulator) -> None:
    alice = emu.add_user("alice")
    public = emu.add_channel("general", [alice])
    private = emu.add_channel("secret", [alice], is_private=True)
    token = emu.bot_token_with(["chat:write", "channels:history"])
    web = WebClient(token=token, base_url=emu.api_url)
    auth = web.auth_test()  # no scope needed; the header lists exactly what was granted
    assert auth.headers["X-OAuth-Scopes"] == "channels:history,chat:write"
    ts = web.chat_postMessage(channel=public, text="hi")["ts"]
    with pytest.raises(SlackApiError) as err:
        web.reactions_add(channel=public, timestamp=ts, name="eyes")
    body = err.value.response.data
    assert body == {
        "ok": False,
        "error": "missing_scope",
        "needed": "reactions:write",
        "provided": "channels:history,chat:write",
    }
    assert emu.reactions(public, ts) == {}  # refused before anything happened
    web.conversations_history(channel=public)  # channels:history covers public channels
    with pytest.raises(SlackApiError) as err:
        web.conversations_history(channel=private)
    assert err.value.response["needed"] == "groups:history"
    with pytest.raises(SlackApiError) as err:
        web.conversations_list(types="public_channel,private_channel")
    assert err.value.response["needed"] == "channels:read"
    with pytest.raises(SlackApiError) as err:
        web.files_upload_v2(channel=public, content="x" * 10, filename="a.txt")
    assert err.value.response["needed"] == "files:write"
    # the manifest's token has them all
    full = WebClient(token=emu.bot_token, base_url=emu.api_url)
    full.reactions_add(channel=public, timestamp=ts, name="eyes")
    full.conversations_list(types="public_channel,private_channel")


def test_a_download_without_files_read_is_the_sign_in_page(emu: SlackEmulator) -> None:
    alice = emu.add_user("alice")
    channel = emu.add_channel("general", [alice])
    emu.post_files_as_user(alice, channel, [("notes.txt", b"the file")], text="here")
    [msg] = [m for m in emu.messages(channel) if m.get("files")]
    url = msg["files"][0]["url_private_download"]
    assert get(url, emu.bot_token)[2] == b"the file"
    lacking = emu.bot_token_with(emu.bot_scopes - {"files:read"})
    status, final, body, headers = get(url, lacking, follow=False)
    assert status == 200 and final == url  # no error status, no redirect: the page itself
    assert headers["Content-Type"].startswith("text/html") and b"Sign in" in body
    assert "Content-Disposition" not in headers


def test_an_emulator_can_be_started_with_fewer_scopes() -> None:
    with SlackEmulator(rate_limit=None, bot_scopes=["chat:write"]) as emu:
        web = WebClient(token=emu.bot_token, base_url=emu.api_url)
        with pytest.raises(SlackApiError) as err:
            web.users_info(user=emu.bot_user_id)
        assert err.value.response["needed"] == "users:read"
        assert err.value.response["provided"] == "chat:write"


def test_events_need_their_scope_too() -> None:
    """Without channels:history Slack never sends a public channel's messages (message.channels);
    a private channel's still come with groups:history."""
    scopes = manifest_scopes() - {"channels:history"}
    with SlackEmulator(rate_limit=None, bot_scopes=scopes) as emu:
        alice = emu.add_user("alice")
        public = emu.add_channel("general", [alice])
        private = emu.add_channel("secret", [alice], is_private=True)
        emu.post_as_user(alice, public, "unheard")
        emu.post_as_user(alice, private, "heard")
        with emu.state.lock:
            sent = [d.payload["event"].get("text") for d in emu.state.deliveries.values()]
            withheld = [d.payload["event"].get("text") for d in emu.state.withheld]
        assert "heard" in sent and "unheard" not in sent
        assert withheld == ["unheard"]
