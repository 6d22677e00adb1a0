"""Files shared in Slack and the Slack receive side: sanitised names, the per-agent inbox, the
download with the bot token (against a small aiohttp stand-in for Slack's file host), and a
listener that acknowledges an event only once its message is kept."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from bridge.channel.files import safe_name, save_files, with_files
from bridge.channel.inbound import Inbound
from bridge.chat.protocol import Attachment, FileTooLarge, Incoming, NotKept, Receipt
from bridge.chat.slack.files import download, token_may_go_to
from bridge.chat.slack.listeners import handle_message
from bridge.config.model import parse_config
from bridge.store.db import Store
from bridge.store.queue import PromptQueue


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        (".bashrc", "bashrc"),
        ("a b;rm -rf ~.txt", "a_b_rm_-rf_.txt"),
        ("$(touch x)`id`.sh", "touch_x_id_.sh"),
        ("résumé\n.txt", "r_sum_.txt"),
        ("..", "file"),
        ("", "file"),
        ("x" * 300 + ".tar.gz", "x" * 97 + ".gz"),
    ],
)
def test_names_are_sanitised(name: str, safe: str) -> None:
    assert safe_name(name) == safe
    assert "/" not in safe_name(name) and not safe_name(name).startswith(".")
    assert len(safe_name(name)) <= 100


def attachment(name: str, data: bytes, file_id: str = "F1", size: int | None = None) -> Attachment:
    async def fetch(limit: int) -> bytes:
        if len(data) > limit:
            raise FileTooLarge("too big")
        return data

    return Attachment(file_id, name, len(data) if size is None else size, fetch)


def test_files_land_in_the_inbox_outside_the_work_tree(tmp_path: Path) -> None:
    async def boom(limit: int) -> bytes:
        raise OSError("connection reset")

    files = [
        attachment("../notes.md", b"# notes\n"),
        attachment("big.bin", b"x" * 50, "F2"),
        Attachment("F3", "gone.txt", 3, boom),
        attachment("liar.bin", b"y" * 50, "F4", size=1),
    ]
    lines = asyncio.run(save_files(tmp_path / "inbox", "one", "17.5", files, limit=20))
    saved = tmp_path / "inbox" / "one" / "17.5-F1-notes.md"
    assert saved.read_bytes() == b"# notes\n" and oct(saved.stat().st_mode & 0o777) == "0o600"
    assert lines[0] == f"- {saved} (8 bytes)"
    assert "big.bin: not downloaded" in lines[1] and "inbound_file_max_bytes" in lines[1]
    assert "gone.txt: could not be downloaded" in lines[2]
    assert "liar.bin: not downloaded" in lines[3]
    assert sorted(p.name for p in (tmp_path / "inbox" / "one").iterdir()) == [saved.name]
    prompt = with_files("look at this", lines)
    assert prompt.startswith("look at this\n\nFiles shared") and str(saved) in prompt


def test_a_file_share_message_reaches_the_queue_with_its_paths(tmp_path: Path) -> None:
    config = parse_config(
        yaml.safe_dump(
            {
                "allowed_users": ["UALICE0001"],
                "agents": [{"slug": "one", "channel": "C0000000001", "workdir": str(tmp_path)}],
            }
        ),
        tmp_path / "agents.yaml",
    )
    store = Store(tmp_path / "state.db")

    class Backend:
        name = "slack"

        async def react(self, *a: Any) -> None:
            return None

    ib = Inbound(config, PromptQueue(store), Backend(), tmp_path / "inbox", channel_ids=dict)  # type: ignore[arg-type]
    item = asyncio.run(
        ib.handle(
            Incoming("C0000000001", "UALICE0001", "", "9.1", files=(attachment("a.txt", b"hi"),))
        )
    )
    assert item is not None
    path = tmp_path / "inbox" / "one" / "9.1-F1-a.txt"
    assert path.read_bytes() == b"hi" and str(path) in item.text
    store.close()


# -- download with the bot token -----------------------------------------------------------


@contextlib.asynccontextmanager
async def file_host() -> AsyncIterator[tuple[str, list[str]]]:
    """A stand-in for Slack's file host: serves /files/<n> (n bytes) to the right token only."""
    seen: list[str] = []

    async def serve(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != "Bearer xoxb-good":
            return web.Response(status=403)
        size = int(request.match_info["n"])
        resp = web.StreamResponse()  # chunked: no Content-Length to trust
        await resp.prepare(request)
        for _ in range(size // 1000):
            await resp.write(b"z" * 1000)
        await resp.write(b"z" * (size % 1000))
        return resp

    app = web.Application()
    app.router.add_get("/files/{n}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


def test_download_sends_the_token_and_enforces_the_limit() -> None:
    seen: list[str] = []

    async def run() -> None:
        async with file_host() as (base, log):
            await check(base)
            seen.extend(log)

    async def check(base: str) -> None:
        good = AsyncWebClient(token="xoxb-good", base_url=f"{base}/api/")
        assert await download(good, f"{base}/files/2500", 10_000) == b"z" * 2500
        with pytest.raises(FileTooLarge):
            await download(good, f"{base}/files/9000", 4000)
        bad = AsyncWebClient(token="xoxb-bad", base_url=f"{base}/api/")
        with pytest.raises(Exception, match="403"):
            await download(bad, f"{base}/files/10", 100)
        with pytest.raises(ValueError, match="refusing to send the bot token"):
            await download(good, "https://evil.example/files/10", 100)

    asyncio.run(run())
    assert seen == ["Bearer xoxb-good", "Bearer xoxb-good", "Bearer xoxb-bad"]


def test_the_token_goes_only_to_slack_hosts() -> None:
    api = "https://slack.com/api/"
    assert token_may_go_to("https://files.slack.com/files-pri/T1-F1/download/a.txt", api)
    assert not token_may_go_to("https://files.slack.com.evil.example/a", api)
    assert not token_may_go_to("http://127.0.0.1:9/a", api)
    assert token_may_go_to("http://127.0.0.1:9/a", "http://127.0.0.1:9/api/")


# -- the listener: ack (return) only when kept -----------------------------------------------


class Host:
    bot_user_id = "UBOT000001"
    bot_id = "BBOT000001"
    command_handler = None

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[Incoming] = asyncio.Queue()
        self.accepting = True
        self.receipts: set[Receipt] = set()

    async def user_name(self, user: str) -> str:
        return user.lower()

    async def humans_in(self, channel: str) -> int:
        return 1

    async def download(self, url: str, limit: int) -> bytes:
        return b"data"


def event(**extra: Any) -> dict[str, Any]:
    return {"type": "message", "channel": "C1", "user": "UALICE0001", "ts": "5.1", **extra}


def test_listener_returns_only_after_the_message_is_kept() -> None:
    async def run() -> None:
        host = Host()
        listener = asyncio.create_task(handle_message(host, event(text="hi"), {"event_id": "E1"}))
        got = await host.incoming.get()
        await asyncio.sleep(0)
        assert not listener.done() and got.event_id == "E1"  # not acked yet
        assert got.receipt is not None
        got.receipt.keep()
        await listener  # returns: Bolt acks
        assert host.receipts == set()

    asyncio.run(run())


def test_listener_raises_when_not_kept_or_stopping() -> None:
    async def run() -> None:
        host = Host()
        listener = asyncio.create_task(handle_message(host, event(text="hi"), {}))
        got = await host.incoming.get()
        assert got.receipt is not None
        got.receipt.refuse(NotKept("disk full"))
        with pytest.raises(NotKept):
            await listener  # raises: Bolt answers 500, no ack, Slack redelivers
        host.accepting = False
        with pytest.raises(NotKept, match="stopping"):
            await handle_message(host, event(text="late"), {})
        assert host.incoming.empty()

    asyncio.run(run())


def test_file_share_messages_pass_with_their_files() -> None:
    async def run() -> Incoming:
        host = Host()
        files = [{"id": "F9", "name": "x.png", "size": 4, "url_private_download": "http://h/x"}]
        ev = event(subtype="file_share", text="see", files=files)
        listener = asyncio.create_task(handle_message(host, ev, {}))
        got = await host.incoming.get()
        assert got.receipt is not None
        got.receipt.keep()
        await listener
        assert await got.files[0].fetch(10) == b"data"
        return got

    got = asyncio.run(run())
    assert [(f.file_id, f.name, f.size) for f in got.files] == [("F9", "x.png", 4)]
    # Other subtypes (edits, joins) still never reach an agent.
    host = Host()
    asyncio.run(handle_message(host, event(subtype="message_changed"), {}))
    asyncio.run(handle_message(host, event(subtype="channel_join"), {}))
    assert host.incoming.empty()
