"""End to end, inbound trust (issue 11, items 1-3, 11, 12): Slack emulator -> real slack-bolt ->
runner -> real Claude CLI in tmux (fake model).

- a stranger's message, a stranger's ``/agent send`` and any steering of an agent with no
  allowlist reach no agent; the closed agent's channel gets one note, not one per restart;
- a CLI command outside ``slash_commands`` is refused with a note naming the key;
- a message with a file reaches the agent with the file (the fake model runs ``cat`` on it);
- a runner SIGKILLed between receiving a message and queueing it loses nothing: the event was
  not acked, the emulator delivers it again to the next runner, and it is queued once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Fleet, wait_until
from tests.e2e.test_slack import thread_texts
from tests.integration.test_runner import wait_ready

pytestmark = pytest.mark.e2e

NOTE = "Nobody can steer"


def notes(slack: Any, channel: str) -> list[str]:
    return [str(m.get("text")) for m in slack.messages(channel) if NOTE in str(m.get("text"))]


def test_strangers_and_agents_without_allowlist_are_never_reached(fleet: Fleet, slack: Any) -> None:
    alice = slack.add_user("alice", "Alice")
    mallory = slack.add_user("mallory", "Mallory")
    listed = slack.add_channel("trust-listed", members=[alice, mallory])
    shut = slack.add_channel("trust-shut", members=[alice, mallory])
    fleet.agent("listed", "claude", channel="#trust-listed", allowed_users=[alice])
    fleet.agent("shut", "claude", channel="#trust-shut")
    fleet.use_slack(slack)
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, "listed", "claude")
    wait_until(lambda: notes(slack, shut), 60, "the closed-access note in #trust-shut")
    assert "allowed_users" in notes(slack, shut)[0] and "channel-members" in notes(slack, shut)[0]

    # A stranger in a listed agent's channel; anyone in an unlisted agent's channel.
    slack.post_as_user(mallory, listed, "STRANGER-1 touch /tmp/pwned")
    slack.post_as_user(alice, shut, "UNLISTED-2 hello")
    wait_until(lambda: len(slack.ephemerals(user=mallory)) >= 1, 30, "refusal to mallory")
    wait_until(lambda: len(slack.ephemerals(user=alice)) >= 1, 30, "refusal to alice")
    assert "allowed_users" in slack.ephemerals(user=alice)[0]["text"]
    # /agent send: judged on the target agent, from whatever channel.
    slack.slash_command(mallory, listed, "/agent", "send listed STRANGER-3")
    slack.slash_command(alice, listed, "/agent", "send shut UNLISTED-4")
    wait_until(lambda: len(slack.responses()) >= 2, 30, "two /agent answers")
    wait_until(
        lambda: sum("nothing was done" in str(r) for r in slack.responses()) >= 2,
        30,
        "both /agent sends refused",
    )
    # A CLI command not on the list.
    logout = slack.post_as_user(alice, listed, "/logout")
    wait_until(
        lambda: any("slash_commands" in t for t in thread_texts(slack, listed, logout)),
        30,
        "the /logout refusal naming slash_commands",
    )
    # The control: the allowed person steering the listed agent gets through, after all the above.
    ok = slack.post_as_user(alice, listed, "ALLOWED-5 hello")
    wait_until(
        lambda: any("ack:" in t and "ALLOWED-5" in t for t in thread_texts(slack, listed, ok)),
        90,
        "the allowed message answered",
    )
    prompts = " ".join(fleet.anthropic.prompts())
    for marker in ("STRANGER-1", "UNLISTED-2", "STRANGER-3", "UNLISTED-4", "/logout"):
        assert marker not in prompts, marker
    status = fleet.status()
    assert status["shut"]["queued"] == 0 and status["listed"]["queued"] == 0
    assert (status["listed"]["access"], status["shut"]["access"]) == ("allowlist", "closed")
    assert "refused steering" in fleet.log_text() and "refused /agent" in fleet.log_text()

    # A restart says it again in the log, not in the channel.
    fleet.stop_runner()
    fleet.start_runner()
    wait_until(
        lambda: fleet.log_text().count("shut: nobody can steer it from Slack") >= 2,
        60,
        "the closed agent logged again at the second start",
    )
    again = slack.post_as_user(alice, listed, "ALLOWED-6 after restart")
    wait_until(
        lambda: any("ack:" in t and "ALLOWED-6" in t for t in thread_texts(slack, listed, again)),
        90,
        "the second runner takes messages",
    )
    assert len(notes(slack, shut)) == 1


def test_a_shared_file_reaches_the_agent_from_its_inbox(fleet: Fleet, slack: Any) -> None:
    alice = slack.add_user("alice", "Alice")
    channel = slack.add_channel("trust-files", members=[alice])
    fleet.agent("files", "claude", channel="#trust-files", allowed_users=[alice])
    fleet.use_slack(slack)
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, "files", "claude")
    inbox = fleet.state_dir / "inbox" / "files"
    body = b"file-body-7f3a\nsecond line\n"
    ts = slack.post_files_as_user(
        alice, channel, [("../notes 1.txt", body)], text=f"RUN: cat {inbox}/*-notes_1.txt"
    )
    try:
        wait_until(
            lambda: any(
                "ran:" in t and "file-body-7f3a" in t for t in thread_texts(slack, channel, ts)
            ),
            90,
            "the agent read the shared file",
        )
    except AssertionError as err:
        raise AssertionError(f"{err}; thread: {thread_texts(slack, channel, ts)}") from None
    [saved] = list(inbox.iterdir())
    assert saved.read_bytes() == body and saved.name.endswith("-notes_1.txt")
    workdir = Path(fleet.agents_by_slug("files")["workdir"])
    assert workdir not in saved.parents
    assert any(str(saved) in p for p in fleet.anthropic.prompts()), "the prompt names the path"


def test_a_crash_between_receipt_and_queue_loses_nothing(
    fleet: Fleet, slack: Any, tmp_path: Path
) -> None:
    alice = slack.add_user("alice", "Alice")
    channel = slack.add_channel("trust-crash", members=[alice])
    fleet.agent("crash", "claude", channel="#trust-crash", allowed_users=[alice])
    fleet.use_slack(slack)
    marker = tmp_path / "crashed-once"
    fleet.slack_env["AGENTBRIDGE_TEST_CRASH_AFTER_RECEIPT"] = str(marker)
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, "crash", "claude")
    runner = fleet.runner
    assert runner is not None
    ts = slack.post_as_user(alice, channel, "KEEP-ME through a crash")
    wait_until(lambda: runner.poll() is not None, 60, "the runner killed at the crash point")
    assert marker.exists() and runner.returncode == -9
    fleet.runner = None
    fleet.start_runner()  # the marker exists: this one does not crash
    wait_until(
        lambda: any("ack: KEEP-ME" in t for t in thread_texts(slack, channel, ts)),
        120,
        "the message redelivered to the next runner and answered",
    )
    wait_until(lambda: "white_check_mark" in slack.reactions(channel, ts), 30, "✅")
    assert sum("KEEP-ME" in p for p in fleet.anthropic.prompts()) == 1
    assert sum("ack: KEEP-ME" in t for t in thread_texts(slack, channel, ts)) == 1
