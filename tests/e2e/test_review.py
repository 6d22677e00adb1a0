"""End to end: PR reviews through the Slack emulator, the real Claude CLI in tmux (fake model),
a local bare repository as the PR remote and the stand-in ``gh`` on PATH (tests only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridge.review.service import reviewer_slug
from tests.conftest import Fleet, wait_until
from tests.e2e.test_slack import thread_texts
from tests.review_support import GhStub, PrRemote

pytestmark = pytest.mark.e2e


def headers(slack: Any, channel: str) -> list[dict[str, Any]]:
    """The review header messages (top level, from the bot)."""
    return [
        m
        for m in slack.messages(channel, include_threads=False)
        if m.get("bot_id") and "#42 Add widgets" in str(m.get("text"))
    ]


def test_slack_review_is_threaded_refused_twice_stopped_cleaned_and_rereviewed_by_the_poll(
    fleet: Fleet, slack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = PrRemote(fleet.root / "gh")
    first = remote.push_head(42, "first")
    gh = GhStub(fleet.root)
    gh.install(monkeypatch)
    gh.pr(42, first)
    alice = slack.add_user("alice", "Alice")
    channel = slack.add_channel("pr-reviews", members=[alice])
    worktrees = fleet.root / "reviews"
    fleet.agent(
        "reviewer",
        "claude",
        channel="#pr-reviews",
        allowed_users=[alice],
        review={
            "repo": str(remote.repo),
            "worktrees": str(worktrees),
            "keep_for": "2s",
            "poll": "1s",
            "task": "Review pull request #{number} ({title}) at {sha}",
        },
    )
    fleet.use_slack(slack)
    fleet.write_config()
    fleet.anthropic.hold()  # the review's turn stays open until released
    fleet.start_runner()
    wait_until(lambda: "runner: started" in fleet.log_text(), 60, "runner")
    assert "reviewer" not in fleet.sessions()  # a template never runs itself

    slack.slash_command(alice, channel, "/agent", "review 42")
    header = wait_until(lambda: headers(slack, channel), 60, "the review header")[0]
    assert "Reviewing #42 Add widgets https://github.com/acme/widgets/pull/42" in header["text"]
    assert first[:12] in header["text"]
    task = f"Review pull request #42 (Add widgets) at {first}"
    wait_until(lambda: task in fleet.anthropic.prompts(), 120, "the task at the model")
    slug = reviewer_slug("reviewer", 42, first)
    tree = worktrees / slug
    assert (tree / "change-42.txt").read_text() == "first"  # the PR's head, checked out

    # While it runs: a second request is refused with a note, and the poll (which now lists
    # the PR at the same head) starts nothing either.
    slack.slash_command(alice, channel, "/agent", "review 42")
    wait_until(
        lambda: any("already under review" in str(r) for r in slack.responses()), 60, "refusal"
    )
    gh.pr(42, first, listed=True)
    polls = gh.calls("pr", "list")
    wait_until(lambda: gh.calls("pr", "list") >= polls + 2, 60, "two polls")
    assert len(headers(slack, channel)) == 1

    # The turn ends: the answer is threaded under the header, the reviewer is stopped, the
    # header says done, and after keep_for its worktree and definition are gone.
    fleet.anthropic.release()
    wait_until(
        lambda: any(f"ack: {task}" in t for t in thread_texts(slack, channel, header["ts"])),
        120,
        "the answer in the header's thread",
    )
    # `done` lasts only keep_for (2 s): on a loaded box one `status` call can outlast it, so
    # "gone from the fleet" counts too (it was running above; only its cleanup removes it).
    wait_until(
        lambda: fleet.status().get(slug, {}).get("state", "gone") in ("done", "gone"),
        90,
        "stopped",
    )
    assert slug not in fleet.sessions()
    wait_until(lambda: "Reviewed #42" in headers(slack, channel)[0]["text"], 60, "header done")
    wait_until(lambda: not tree.exists(), 60, "worktree removed after keep_for")
    assert not (fleet.state_dir / "spawned" / f"{slug}.yaml").exists()
    wait_until(lambda: slug not in fleet.status(), 60, "the reviewer gone from the fleet")
    assert fleet.runner is not None and fleet.runner.poll() is None

    # A new head seen by the poll: exactly one new review.
    second = remote.push_head(42, "second")
    gh.pr(42, second, listed=True)
    new_slug = reviewer_slug("reviewer", 42, second)
    wait_until(lambda: len(headers(slack, channel)) == 2, 60, "a review of the new head")
    wait_until(
        lambda: f"Review pull request #42 (Add widgets) at {second}" in fleet.anthropic.prompts(),
        120,
        "the new task at the model",
    )
    wait_until(lambda: fleet.status().get(new_slug, {}).get("state") == "done", 120, "done")
    polls = gh.calls("pr", "list")
    wait_until(lambda: gh.calls("pr", "list") >= polls + 2, 60, "two more polls")
    found = headers(slack, channel)
    assert len(found) == 2 and second[:12] in found[1]["text"]
    assert sum(second in p for p in fleet.anthropic.prompts()) == 1
    assert not Path(worktrees / slug).exists()
