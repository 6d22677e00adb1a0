"""Files in the emulator: people share them, the bot downloads them, uploads can be found again.

A person's file share reaches the app as a `message` event with `subtype: "file_share"` and
`files`; their `url_private_download` answers only to the bot token (otherwise a redirect to a
sign-in page, as files.slack.com does). An upload whose answer was lost can be found again with
`files.list` by the title or filename the client chose, and `shares` says which message it is.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bridge.devtools.slack_emulator import SlackEmulator
from tests.unit.test_slack_emulator import Collector, close_quickly


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


FOLLOW = urllib.request.build_opener(urllib.request.ProxyHandler({}))
STAY = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())


def get(url: str, token: str | None = None, follow: bool = True) -> tuple[int, str, bytes, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        opener = FOLLOW if follow else STAY
        with opener.open(urllib.request.Request(url, headers=headers), timeout=10) as resp:
            return resp.status, resp.url, resp.read(), resp.headers
    except urllib.error.HTTPError as err:
        return err.code, url, err.read(), err.headers


@pytest.fixture
def web(emu: SlackEmulator) -> WebClient:
    return WebClient(token=emu.bot_token, base_url=emu.api_url, timeout=10)


@pytest.fixture
def people(emu: SlackEmulator) -> tuple[str, str]:
    alice = emu.add_user("alice", "Alice A.")
    return alice, emu.add_channel("general", [alice])


def test_a_person_shares_files_and_the_bot_downloads_them(
    emu: SlackEmulator, web: WebClient, people: tuple[str, str]
) -> None:
    alice, general = people
    sock = Collector(emu, web)
    sock.client.connect()
    try:
        root = emu.post_as_user(alice, general, "logs attached next")
        ts = emu.post_files_as_user(
            alice, general, [("crash.log", b"boom\n"), ("shot.png", b"\x89PNG")], "see these", root
        )
        emu.wait_for(lambda: sock.events(subtype="file_share"), 10, "file_share event")
    finally:
        close_quickly(emu, sock.client)
    event = sock.events(subtype="file_share")[0].payload["event"]
    assert (event["user"], event["text"], event["ts"]) == (alice, "see these", ts)
    assert (event["thread_ts"], event["parent_user_id"]) == (root, alice)
    assert event["upload"] is True and event["display_as_bot"] is False
    log, png = event["files"]
    assert (log["name"], log["title"], log["mimetype"], log["size"]) == (
        "crash.log", "crash.log", "text/plain", 5,
    )  # fmt: skip
    assert png["mimetype"] == "image/png" and log["user"] == alice and log["id"].startswith("F")
    assert log["url_private_download"].startswith(f"{emu.base_url}files-pri/{emu.team_id}-")
    assert log["url_private_download"].endswith("/download/crash.log")

    status, _, body, headers = get(log["url_private_download"], emu.bot_token)
    assert (status, body) == (200, b"boom\n")
    assert headers["Content-Disposition"].startswith("attachment;")
    assert get(log["url_private"], emu.bot_token)[2] == b"boom\n"
    # Without the token, like files.slack.com: a redirect to sign in, then an HTML page.
    status, _, _, headers = get(log["url_private_download"], follow=False)
    assert status == 302 and "/signin?redir=" in headers["Location"]
    for token in (None, "xoxb-wrong"):
        status, final, page, headers = get(log["url_private_download"], token)
        assert (
            status == 200 and "/signin" in final and headers["Content-Type"].startswith("text/html")
        )
        assert b"boom" not in page
    assert emu.messages(general)[-1]["files"][0]["id"] == log["id"]
    with pytest.raises(ValueError):
        emu.post_files_as_user(alice, general, [])


def test_a_lost_upload_answer_is_found_again_by_title(
    emu: SlackEmulator, web: WebClient, people: tuple[str, str]
) -> None:
    _, general = people
    other = emu.add_channel("other")
    started = int(time.time())
    root = web.chat_postMessage(channel=general, text="turn 7")["ts"]
    emu.inject("files.completeUploadExternal", status=503, after=True)  # shared, answer lost
    with pytest.raises(SlackApiError):
        web.files_upload_v2(
            channel=general, content="full output", filename="turn-7.txt",
            title="turn 7 output", thread_ts=root,
        )  # fmt: skip
    web.files_upload_v2(channel=other, content="elsewhere", filename="x.txt", title="other")

    found = web.files_list(channel=general, ts_from=started, user=emu.bot_user_id)
    assert [f["title"] for f in found["files"]] == ["turn 7 output"]
    f = found["files"][0]
    assert f["name"] == "turn-7.txt" and f["channels"] == [general] and f["created"] >= started
    share = f["shares"]["public"][general][0]
    assert share["thread_ts"] == root and share["channel_name"] == "general"
    thread = web.conversations_replies(channel=general, ts=root)["messages"]
    assert [m["ts"] for m in thread if m.get("files")] == [share["ts"]]  # shared exactly once
    assert thread[-1]["files"][0]["title"] == "turn 7 output"
    info = web.files_info(file=f["id"])["file"]
    assert info["shares"] == f["shares"] and info["size"] == len("full output")
    assert get(info["url_private_download"], emu.bot_token)[2] == b"full output"

    everything = web.files_list()
    assert [x["title"] for x in everything["files"]] == ["other", "turn 7 output"]  # newest first
    assert web.files_list(ts_from=int(time.time()) + 60)["files"] == []
    paged = web.files_list(count=1, page=2)
    assert paged["paging"] == {"count": 1, "total": 2, "page": 2, "pages": 2}
    assert [x["title"] for x in paged["files"]] == ["turn 7 output"]
    assert web.files_list(types="images")["files"] == []
    with pytest.raises(SlackApiError, match="file_not_found"):
        web.files_info(file="F404")


def test_top_level_uploads_show_in_history_with_their_files(
    emu: SlackEmulator, web: WebClient, people: tuple[str, str]
) -> None:
    _, general = people
    web.files_upload_v2(
        channel=general, content="a", filename="a.txt", title="A", initial_comment="one file"
    )
    history = web.conversations_history(channel=general)["messages"]
    assert history[0]["text"] == "one file" and history[0]["upload"] is True
    assert [(x["name"], x["title"]) for x in history[0]["files"]] == [("a.txt", "A")]
