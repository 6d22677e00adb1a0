"""End to end: an approval never allows more than the person chose (issue 20, items 1-3).

The real Claude (every pinned version) and Codex in tmux, ``permissions: ask``, the real runner
against the loopback Slack emulator; one runner per test for all of its steps.

- A command holding ``*`` gets no "Always allow this session" (Claude would read the rule as a
  wildcard: ``touch note*.txt`` would allow ``touch note.txt pwned.txt``); the broader command
  asks again. Codex gets no session button at
  all (its hook cannot install a rule).
- "Allow once" is once: the same command again in the same turn (``TWICE``) is a new request,
  posted and answered anew.
- A failure on the approval path (here the asks table gone from the state database) denies,
  on both CLIs: the command does not run, the model is told, and so is the channel.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bridge.devtools import clis
from tests.conftest import Fleet, wait_until
from tests.e2e.test_questions import answered_in_thread, ask_message, buttons, closed
from tests.e2e.test_slack import setup_agent, thread_texts

pytestmark = pytest.mark.e2e

CLAUDE_PINS = [n for n, p in clis.PINS.items() if p.package == "@anthropic-ai/claude-code"]


def approvals(slack: Any, channel: str) -> list[dict[str, Any]]:
    return [m for m in slack.messages(channel) if "wants to run" in str(m.get("text"))]


def start(fleet: Fleet, slack: Any, slug: str, runtime: str, **extra: Any) -> tuple[str, str]:
    alice, channel, _ = setup_agent(fleet, slack, slug, runtime, permissions="ask", **extra)
    fleet.write_config()
    fleet.start_runner()
    wait_until(lambda: fleet.status().get(slug, {}).get("alive"), 90, f"{slug} alive")
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 90, f"{slug} idle")
    return alice, channel


def new_approval(slack: Any, channel: str, seen: int) -> dict[str, Any]:
    found: dict[str, Any] = wait_until(
        lambda: len(approvals(slack, channel)) > seen and ask_message(slack, channel),
        90,
        f"approval #{seen + 1}",
    )
    return found


def idle(fleet: Fleet, slug: str) -> None:
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 60, f"{slug} idle")


def fails_closed(fleet: Fleet, slack: Any, slug: str, alice: str, channel: str, told: str) -> None:
    """The asks table gone from the state database: the approval is denied (the command does
    not run, the model reads ``told``), the channel is told, no dialog is left in the pane."""
    workdir = Path(fleet.agents_by_slug(slug)["workdir"])
    db = sqlite3.connect(fleet.state_dir / "state.db", timeout=30)
    db.execute("ALTER TABLE asks RENAME TO asks_away")
    db.commit()
    try:
        root = slack.post_as_user(alice, channel, "broken APPROVE:touch broken.txt")
        wait_until(
            lambda: answered_in_thread(slack, channel, root, "could not be relayed here"),
            90,
            "the channel told",
        )
        wait_until(lambda: answered_in_thread(slack, channel, root, told), 90, "the model told")
        assert not (workdir / "broken.txt").exists()
        assert "Do you want to proceed" not in fleet.capture(slug)
        idle(fleet, slug)
    finally:
        db.execute("ALTER TABLE asks_away RENAME TO asks")
        db.commit()
        db.close()


@pytest.mark.parametrize("version", CLAUDE_PINS)
def test_claude_approvals_allow_exactly_what_was_chosen(
    fleet: Fleet, slack: Any, version: str
) -> None:
    slug = f"exact-{version}"
    alice, channel = start(fleet, slack, slug, "claude", version=version)
    workdir = Path(fleet.agents_by_slug(slug)["workdir"])

    # 1. A command holding "*": Allow once and Deny, no session rule.
    root = slack.post_as_user(alice, channel, "star APPROVE:touch note*.txt")
    msg = new_approval(slack, channel, 0)
    ids = buttons(msg)
    assert {"Allow once", "Deny"} <= set(ids)
    assert "Always allow this session" not in ids  # (a forged click: tests/unit)
    slack.click(alice, channel, msg["ts"], ids["Allow once"], "allow")
    wait_until(lambda: answered_in_thread(slack, channel, root, "result:"), 90, "it ran once")
    closed(slack, channel, msg["ts"], "allowed it once")
    idle(fleet, slug)
    root = slack.post_as_user(alice, channel, "wider APPROVE:touch note.txt pwned.txt")
    msg = new_approval(slack, channel, 1)  # asked again: nothing allows it
    slack.click(alice, channel, msg["ts"], buttons(msg)["Deny"], "deny")
    wait_until(
        lambda: answered_in_thread(slack, channel, root, f"Denied from chat by {alice}"),
        90,
        "the model told",
    )
    assert not (workdir / "pwned.txt").exists()
    idle(fleet, slug)

    # 3. "Allow once" is once: the same command again in the same turn is asked again.
    root = slack.post_as_user(alice, channel, "TWICE APPROVE:echo once >> r.txt")
    msg = new_approval(slack, channel, 2)
    assert "Always allow this session" in buttons(msg)  # an exact rule exists for this one
    slack.click(alice, channel, msg["ts"], buttons(msg)["Allow once"], "allow")
    again = new_approval(slack, channel, 3)
    assert again["ts"] != msg["ts"] and again.get("thread_ts") == root
    slack.click(alice, channel, again["ts"], buttons(again)["Deny"], "deny")
    wait_until(
        lambda: answered_in_thread(slack, channel, root, f"Denied from chat by {alice}"),
        90,
        "the second request denied",
    )
    assert (workdir / "r.txt").read_text().splitlines() == ["once"]
    idle(fleet, slug)
    audit = [a["what"] for a in fleet.status()[slug]["answers"] if a["action"] == "answered"]
    assert audit[:2] == ["denied it", "allowed it once"]

    # 2. The approval path fails (a database error): denied, the model and the channel told.
    fails_closed(fleet, slack, slug, alice, channel, "result: agentbridge could not")
    assert len(approvals(slack, channel)) == 4


def test_codex_approvals_have_no_session_rule_and_once_is_once(fleet: Fleet, slack: Any) -> None:
    slug = "exact-codex"
    alice, channel = start(fleet, slack, slug, "codex")
    workdir = Path(fleet.agents_by_slug(slug)["workdir"])
    root = slack.post_as_user(alice, channel, "TWICE APPROVE:echo once >> r.txt")
    msg = new_approval(slack, channel, 0)
    ids = buttons(msg)
    assert {"Allow once", "Deny"} <= set(ids) and "Always allow this session" not in ids
    slack.click(alice, channel, msg["ts"], ids["Allow once"], "allow")
    again = new_approval(slack, channel, 1)
    slack.click(alice, channel, again["ts"], buttons(again)["Deny"], "deny")
    told = wait_until(
        lambda: [
            t
            for t in thread_texts(slack, channel, root)
            if "result:" in t and f"Denied from chat by {alice}" in t
        ],
        90,
        "the second request denied",
    )
    assert told
    assert (workdir / "r.txt").read_text().splitlines() == ["once"]
    assert json.dumps(fleet.status()[slug]["answers"]).count('"answered"') == 2
    idle(fleet, slug)
    # Codex reads the same deny (its function output carries the reason).
    fails_closed(fleet, slack, slug, alice, channel, "agentbridge could not relay")
