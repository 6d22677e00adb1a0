"""End to end, a Slack app installed without ``files:read`` (issue 20.17, 21.1): Slack emulator
granting the manifest's scopes but that one -> real slack-bolt -> runner -> real Claude CLI.

The runner says at start which scope the token lacks and what it breaks; a file shared with a
steering message is answered by Slack with its sign-in page (HTTP 200, HTML), and the agent gets
the message with a line saying so (naming the scope) instead of the page saved as the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bridge.devtools.slack_emulator import SlackEmulator
from bridge.devtools.slack_emulator_scopes import manifest_scopes
from tests.conftest import Fleet, wait_until
from tests.e2e.test_slack import thread_texts
from tests.integration.test_runner import wait_ready

pytestmark = pytest.mark.e2e


@pytest.fixture
def slack_without_files_read() -> Iterator[Any]:
    with SlackEmulator(bot_scopes=manifest_scopes() - {"files:read"}) as emulator:
        yield emulator


def test_a_file_slack_would_not_serve_is_reported_not_saved(
    fleet: Fleet, slack_without_files_read: Any
) -> None:
    slack = slack_without_files_read
    alice = slack.add_user("alice", "Alice")
    channel = slack.add_channel("scopes-files", members=[alice])
    fleet.agent("files", "claude", channel="#scopes-files", allowed_users=[alice])
    fleet.use_slack(slack)
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, "files", "claude")
    assert "the bot token lacks files:read (downloading files people share" in fleet.log_text()
    ts = slack.post_files_as_user(alice, channel, [("notes.txt", b"secret-notes\n")], text="hi")
    wait_until(
        lambda: any("ack:" in t for t in thread_texts(slack, channel, ts)),
        90,
        "the message answered although its file was not",
    )
    prompt = next(p for p in fleet.anthropic.prompts() if "notes.txt" in p)
    assert "notes.txt: not downloaded: Slack answered with its sign-in page" in prompt
    assert "files:read" in prompt
    inbox = fleet.state_dir / "inbox" / "files"
    assert not inbox.exists() or not any(inbox.iterdir())
