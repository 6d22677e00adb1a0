"""The mirror through the real Slack backend on the in-process emulator: posts whose outcome
is unknown, lost upload answers, and errors Slack will never stop giving (issue 11, items 7-9).

Each scenario runs in one event loop; the emulator serves on its own thread. Retry waits are the
backend's own (0.5 s), not the test's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.chat.slack.backend import SlackBackend
from bridge.chat.slack.posting import file_token
from bridge.devtools.slack_emulator import SlackEmulator
from tests.unit.mirror_support import Harness, assistant


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    with SlackEmulator() as emulator:
        yield emulator


def backend(emu: SlackEmulator) -> SlackBackend:
    return SlackBackend(
        emu.bot_token, emu.app_token, emu.api_url, min_interval=0, attempts=2, lookup_attempts=2
    )


def bot_messages(emu: SlackEmulator, channel: str) -> list[dict[str, Any]]:
    return [m for m in emu.messages(channel) if m.get("bot_id")]


def uploads(emu: SlackEmulator, channel: str) -> list[dict[str, Any]]:
    return [f for m in bot_messages(emu, channel) for f in m.get("files") or []]


def run(h: Harness, scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())
    h.close()


async def pump_again(h: Harness) -> int:
    """The next flush, without waiting out the mirror's back-off (the test's clock)."""
    h.mirror._retry_at = 0.0
    return await h.mirror.pump()


# -- item 7: an outcome unknown after the retries is looked up before any re-post -----------


def test_a_post_whose_outcome_stayed_unknown_is_looked_up_not_reposted(
    tmp_path: Path, emu: SlackEmulator
) -> None:
    channel = emu.add_channel("agent-mx")
    h = Harness(tmp_path, backend(emu), channel)
    h.append(assistant(1, "only once please"))

    async def scenario() -> None:
        # Posted, answer lost (503); the look-up before the retry fails both its attempts.
        emu.inject("chat.postMessage", status=503, after=True)
        emu.inject("conversations.history", status=500, times=2)
        with pytest.raises(Exception, match="internal_error"):
            await h.mirror.pump()
        assert h.ledger.pending("mx"), "the intent stays pending"
        # The next flush: its look-up fails once more (it retries), then finds the post.
        emu.inject("conversations.history", status=500, times=1)
        await pump_again(h)
        # And when the look-up cannot answer at all, nothing is posted: the pass fails.
        h.append(assistant(2, "second"))
        emu.inject("chat.postMessage", status=503, after=True, times=2)
        emu.inject("conversations.history", status=500, times=2)
        with pytest.raises(Exception, match="internal_error"):
            await h.mirror.pump()
        emu.inject("conversations.history", status=500, times=2)
        with pytest.raises(Exception, match="internal_error"):
            await pump_again(h)
        await pump_again(h)

    run(h, scenario)
    texts = [m["text"] for m in bot_messages(emu, channel)]
    assert texts == ["only once please", "second"], texts
    assert Harness(tmp_path, None, channel).ledger.pending("mx") == []


# -- item 8: a lost upload answer does not upload twice ------------------------------------


@pytest.mark.parametrize("lookup_fails", [False, True], ids=["lookup-ok", "lookup-fails-too"])
def test_a_lost_upload_answer_never_uploads_twice(
    tmp_path: Path, emu: SlackEmulator, lookup_fails: bool
) -> None:
    channel = emu.add_channel("agent-mx")
    h = Harness(tmp_path, backend(emu), channel)
    h.append(assistant(1, "long reply " + "x" * 13000))

    async def scenario() -> None:
        emu.inject("files.completeUploadExternal", status=503, after=True)  # shared, answer lost
        if lookup_fails:
            emu.inject("conversations.history", status=500, times=2)
            with pytest.raises(Exception, match="internal_error"):
                await h.mirror.pump()
            await pump_again(h)
        else:
            await h.mirror.pump()

    run(h, scenario)
    files = uploads(emu, channel)
    assert len(files) == 1, files
    event_id = Harness(tmp_path, None, channel).ledger.store.query(
        "SELECT event_id, chat_ref, status FROM ledger"
    )[0]
    assert event_id[2] == "posted" and event_id[1] == "file:" + files[0]["id"]
    assert file_token(event_id[0]) in files[0]["name"]
    assert files[0]["title"] == "reply.md"


# -- item 9: errors Slack keeps giving ------------------------------------------------------


def test_not_in_a_public_channel_joins_and_posts(tmp_path: Path, emu: SlackEmulator) -> None:
    channel = emu.add_channel("agent-mx", bot_member=False)
    h = Harness(tmp_path, backend(emu), channel)
    h.append(assistant(1, "hello"))
    run(h, lambda: h.mirror.pump())
    assert [m["text"] for m in bot_messages(emu, channel)] == ["hello"]
    assert len(emu.calls("conversations.join")) == 1


@pytest.mark.parametrize(
    "setup, reason",
    [
        ("private", "not_in_channel"),
        ("channel_not_found", "channel_not_found"),
        ("is_archived", "is_archived"),
    ],
)
def test_a_channel_that_refuses_for_good_is_skipped_with_a_record_and_one_alert(
    tmp_path: Path, emu: SlackEmulator, caplog: pytest.LogCaptureFixture, setup: str, reason: str
) -> None:
    channel = emu.add_channel("agent-mx", bot_member=setup != "private", is_private=True)
    if setup != "private":
        emu.inject("chat.postMessage", status=200, error=setup, times=3)
    h = Harness(tmp_path, backend(emu), channel)
    caplog.set_level(logging.WARNING, "agentbridge")

    async def scenario() -> None:
        for i in (1, 2, 3):  # three messages, three passes: each returns, none loops
            h.append(assistant(i, f"message {i}"))
            await h.mirror.pump()

    run(h, scenario)
    store = Harness(tmp_path, None, channel)
    assert store.ledger.skipped_count("mx") == 3
    assert store.ledger.posted_count("mx") == 0 and store.ledger.pending("mx") == []
    assert len(emu.calls("chat.postMessage")) == 3, "one call per message: no retry loop"
    alerts = [r for r in caplog.records if r.levelno == logging.ERROR and reason in r.getMessage()]
    assert len(alerts) == 1, [r.getMessage() for r in caplog.records]
    assert bot_messages(emu, channel) == []


def test_invalid_blocks_is_posted_as_plain_text(tmp_path: Path, emu: SlackEmulator) -> None:
    channel = emu.add_channel("agent-mx")
    emu.inject("chat.postMessage", status=200, error="invalid_blocks")
    h = Harness(tmp_path, backend(emu), channel)
    h.append(assistant(1, "plain words"))
    run(h, lambda: h.mirror.pump())
    assert [m["text"] for m in bot_messages(emu, channel)] == ["plain words"]
    assert str(emu.calls("chat.postMessage")[-1][1].get("mrkdwn")).lower() in ("false", "0")


def test_msg_blocks_too_long_is_posted_as_plain_text(tmp_path: Path, emu: SlackEmulator) -> None:
    """Slack's undocumented total of a message's block texts: the words still go out."""
    channel = emu.add_channel("agent-mx")
    emu.inject("chat.postMessage", status=200, error="msg_blocks_too_long")
    h = Harness(tmp_path, backend(emu), channel)
    h.append(assistant(1, "plain words"))
    run(h, lambda: h.mirror.pump())
    assert [m["text"] for m in bot_messages(emu, channel)] == ["plain words"]


def test_msg_too_long_is_uploaded_as_a_file_with_its_identity(
    tmp_path: Path, emu: SlackEmulator
) -> None:
    channel = emu.add_channel("agent-mx")
    emu.inject("chat.postMessage", status=200, error="msg_too_long")
    h = Harness(tmp_path, backend(emu), channel)
    h.append(assistant(1, "a long one"))
    run(h, lambda: h.mirror.pump())
    files = uploads(emu, channel)
    assert len(files) == 1 and files[0]["title"] == "message.md"
    ledger = Harness(tmp_path, None, channel).ledger
    assert ledger.posted_count("mx") == 1 and ledger.skipped_count("mx") == 0


def test_content_refused_even_degraded_is_skipped_and_said_in_the_channel(
    tmp_path: Path, emu: SlackEmulator
) -> None:
    channel = emu.add_channel("agent-mx")
    # The coalesced message is refused (twice: plain text too), then its first part alone.
    emu.inject("chat.postMessage", status=200, error="invalid_blocks", times=4)
    h = Harness(tmp_path, backend(emu), channel)
    h.append(assistant(1, "refused"), assistant(2, "fine"))
    run(h, lambda: h.mirror.pump())
    texts = [m["text"] for m in bot_messages(emu, channel)]
    assert len(texts) == 2 and "invalid_blocks" in texts[0] and texts[1] == "fine", texts
    assert Harness(tmp_path, None, channel).ledger.skipped_count("mx") == 1


def test_an_unknown_error_backs_off_instead_of_skipping(tmp_path: Path, emu: SlackEmulator) -> None:
    channel = emu.add_channel("agent-mx")
    emu.inject("chat.postMessage", status=200, error="something_new", times=2)
    h = Harness(tmp_path, backend(emu), channel)
    h.append(assistant(1, "kept"))

    async def scenario() -> None:
        retry_at = 0.0
        for failures in (1, 2):
            with pytest.raises(Exception, match="something_new"):
                await pump_again(h)
            assert h.mirror.failures == failures  # the next try waits 2 ** failures s
            assert h.mirror._retry_at > retry_at
            retry_at = h.mirror._retry_at
        await pump_again(h)
        assert h.mirror.failures == 0

    run(h, scenario)
    assert [m["text"] for m in bot_messages(emu, channel)] == ["kept"]
    assert Harness(tmp_path, None, channel).ledger.skipped_count("mx") == 0


def test_skipped_posts_show_in_status_json(tmp_path: Path) -> None:
    """``agentbridge status --json`` counts an agent's skipped posts (``skipped_posts``)."""
    from types import SimpleNamespace

    from bridge.app.status import as_json, collect
    from bridge.config.model import parse_config

    work = tmp_path / "w"
    work.mkdir()
    text = f"agents:\n  - slug: mx\n    workdir: {work}\n"
    config = parse_config(text, tmp_path / "agents.yaml")
    h = Harness(tmp_path, None)
    h.ledger.skip_posts("mx", ("a", "b"), "channel_not_found")
    tmux = SimpleNamespace(snapshot=lambda: {})
    rows = as_json(collect(config, h.store, tmux))  # type: ignore[arg-type]
    assert rows[0]["skipped_posts"] == 2
    h.close()
