"""A shared file downloaded with a token that may not read files (issue 20.17).

Real Slack answers ``url_private_download`` without ``files:read`` with its sign-in page (HTTP
200, HTML), not an error. The product must notice, save nothing under the user's file name, and
tell the agent (and the log) what Slack answered and which scope is missing; an HTML file a
person really shared still downloads.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bridge.channel.files import save_files
from bridge.chat.protocol import Attachment, FileNotServed
from bridge.chat.slack.files import download
from bridge.devtools.slack_emulator import SlackEmulator


def shared(emu: SlackEmulator, name: str, body: bytes) -> dict[str, object]:
    alice = emu.add_user("alice")
    channel = emu.add_channel("general", [alice])
    emu.post_files_as_user(alice, channel, [(name, body)], text="here")
    [msg] = [m for m in emu.messages(channel) if m.get("files")]
    file: dict[str, object] = msg["files"][0]
    return file


def attachment(emu: SlackEmulator, token: str, file: dict[str, object]) -> Attachment:
    client = AsyncWebClient(token=token, base_url=emu.api_url)
    url = str(file["url_private_download"])

    async def fetch(limit: int) -> bytes:
        return await download(client, url, limit)

    size = int(str(file["size"]))
    return Attachment(str(file["id"]), str(file["name"]), size, fetch, url)


def test_the_sign_in_page_is_not_saved_as_the_file(
    emu: SlackEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    file = shared(emu, "report.csv", b"a,b\n1,2\n")
    token = emu.bot_token_with(emu.bot_scopes - {"files:read"})
    with pytest.raises(FileNotServed, match=r"sign-in page.*files:read"):
        asyncio.run(attachment(emu, token, file).fetch(1_000_000))
    with caplog.at_level(logging.ERROR, "agentbridge.inbound"):
        lines = asyncio.run(
            save_files(tmp_path, "a1", "1.2", [attachment(emu, token, file)], 1_000_000)
        )
    [line] = lines
    assert line.startswith("- report.csv: not downloaded: Slack answered with its sign-in page")
    assert "files:read" in line
    assert not (tmp_path / "a1").exists() or not any((tmp_path / "a1").iterdir())
    assert "files:read" in caplog.text


def test_with_files_read_the_file_is_saved(emu: SlackEmulator, tmp_path: Path) -> None:
    file = shared(emu, "report.csv", b"a,b\n1,2\n")
    [line] = asyncio.run(
        save_files(tmp_path, "a1", "1.2", [attachment(emu, emu.bot_token, file)], 1_000_000)
    )
    [saved] = list((tmp_path / "a1").iterdir())
    assert saved.read_bytes() == b"a,b\n1,2\n" and line.startswith(f"- {saved} ")


def test_an_html_file_a_person_shared_still_downloads(emu: SlackEmulator) -> None:
    body = b"<!DOCTYPE html><html><body>my page</body></html>"
    file = shared(emu, "page.html", body)
    assert asyncio.run(attachment(emu, emu.bot_token, file).fetch(1_000_000)) == body
