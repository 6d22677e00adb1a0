"""End to end: an agent's question and approval requests answered by clicking in Slack.

The real Claude (and Codex for approvals) in tmux, driven by the fake models' ``ASK:`` /
``APPROVE:`` directives, the real runner against the loopback Slack emulator. What the model
received is read back from the fake model's next answer (``answered: <tool result>`` /
``result: <tool output>``), mirrored into the thread.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Fleet, wait_until
from tests.e2e.test_slack import setup_agent, thread_texts
from tests.integration.test_runner import wait_ready

pytestmark = pytest.mark.e2e


def ask_message(slack: Any, channel: str) -> dict[str, Any] | None:
    """The newest bot message that still has our (``q:``) buttons."""
    for m in reversed(slack.messages(channel)):
        if m.get("bot_id") and any(a.startswith("q:") for a in buttons(m).values()):
            return dict(m)
    return None


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """action_id by visible text (``Choose`` buttons by their value, the option label)."""
    found: dict[str, str] = {}
    for block in message.get("blocks") or []:
        elements = list(block.get("elements") or [])
        if block.get("accessory"):
            elements.append(block["accessory"])
        for el in elements:
            if el.get("type") == "button":
                label = el["value"] if el["text"]["text"] == "Choose" else el["text"]["text"]
                found[label] = el["action_id"]
            elif el.get("type") == "checkboxes":
                found["checkboxes"] = el["action_id"]
    return found


def current(slack: Any, channel: str, ts: str) -> dict[str, Any]:
    return next(m for m in slack.messages(channel) if m["ts"] == ts)


def closed(slack: Any, channel: str, ts: str, holding: str = "") -> dict[str, Any]:
    """The message once rewritten without buttons (and holding ``holding``): the rewrite runs
    beside the answer's way to the model, so it may land after the model's reply."""
    found: dict[str, Any] = wait_until(
        lambda: (
            (m := current(slack, channel, ts))
            and not buttons(m)
            and holding in json.dumps(m.get("blocks"))
            and m
        ),
        60,
        "the message closed",
    )
    return found


def answered_in_thread(slack: Any, channel: str, root: str, needle: str) -> bool:
    return any(needle in t for t in thread_texts(slack, channel, root))


def start_claude(fleet: Fleet, slack: Any, slug: str, **extra: Any) -> tuple[str, str, str]:
    alice, channel, _ = setup_agent(fleet, slack, slug, "claude", **extra)
    mallory = slack.add_user("mallory", "Mallory")
    slack.join(mallory, channel)
    fleet.write_config()
    fleet.start_runner()
    if extra.get("permissions") == "ask":  # no "bypass permissions" footer to wait for
        wait_until(lambda: fleet.status().get(slug, {}).get("alive"), 90, f"{slug} alive")
        wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 90, f"{slug} idle")
    else:
        wait_ready(fleet, slug, "claude")
    return alice, mallory, channel


def test_claude_question_is_buttons_a_click_answers_and_a_stranger_cannot(
    fleet: Fleet, slack: Any
) -> None:
    slug = "ask-claude"
    alice, mallory, channel = start_claude(fleet, slack, slug)
    root = slack.post_as_user(alice, channel, "pick one ASK:Which color?|red|blue")
    msg = wait_until(lambda: ask_message(slack, channel), 90, "the question as buttons")
    assert msg.get("thread_ts") == root  # in the turn's thread
    assert "option blue" in json.dumps(msg["blocks"])  # the option's description is shown
    ids = buttons(msg)
    assert {"red", "blue", "Other…"} <= set(ids)
    status = wait_until(
        lambda: (s := fleet.status()[slug])["activity"] == "waiting_input" and s, 30, "waiting"
    )
    assert status["waiting"]["for"] == "question"
    permalink = f"/archives/{channel}/p{msg['ts'].replace('.', '')}?thread_ts={root}"
    assert permalink in status["waiting"]["link"]
    # The turn's status line links to the question instead of "attach to the tmux session".
    wait_until(
        lambda: any(
            "waiting for your answer to <" in t for t in thread_texts(slack, channel, root)
        ),
        30,
        "the status line linking to the question",
    )

    # A stranger's click changes nothing and gets a private refusal.
    slack.click(mallory, channel, msg["ts"], ids["blue"], "blue")
    wait_until(lambda: slack.ephemerals(user=mallory), 30, "the refusal")
    assert buttons(current(slack, channel, msg["ts"]))
    assert fleet.status()[slug]["activity"] == "waiting_input"

    slack.click(alice, channel, msg["ts"], ids["blue"], "blue")
    wait_until(
        lambda: answered_in_thread(
            slack,
            channel,
            root,
            'answered: Your questions have been answered: "Which color?"="blue"',
        ),
        90,
        "the model's answer built on the tool result",
    )
    done = closed(slack, channel, msg["ts"], "blue")
    assert alice in json.dumps(done["blocks"])
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 30, "the turn finished")
    audit = fleet.status()[slug]["answers"]
    mine = [a for a in audit if a["user"] == alice]
    assert [a["action"] for a in mine] == ["answered"] and "blue" in mine[0]["what"]
    assert any(a["action"] == "refused" and a["user"] == mallory for a in audit)


def test_claude_question_survives_a_runner_sigkill_and_is_answered_once(
    fleet: Fleet, slack: Any
) -> None:
    slug = "ask-kill"
    alice, _, channel = start_claude(fleet, slack, slug)
    slack.post_as_user(alice, channel, "pick one ASK:Which shape?|round|square")
    msg = wait_until(lambda: ask_message(slack, channel), 90, "the question as buttons")
    ids = buttons(msg)

    assert fleet.runner is not None
    os.kill(fleet.runner.pid, signal.SIGKILL)
    fleet.runner.wait()
    fleet.runner = None
    fleet.start_runner()
    wait_until(lambda: fleet.log_text().count("runner: started") >= 2, 60, "the second runner")

    def click_until_taken() -> bool:
        # Clicks before the new runner's Socket Mode connection are not acknowledged (as in
        # Slack, the person sees an error and clicks again).
        if buttons(current(slack, channel, msg["ts"])):
            slack.click(alice, channel, msg["ts"], ids["square"], "square")
        return not buttons(current(slack, channel, msg["ts"]))

    wait_until(click_until_taken, 60, "alice's click taken by the new runner", interval=2)
    expected = 'answered: Your questions have been answered: "Which shape?"="square"'
    wait_until(
        lambda: any(expected in str(m.get("text")) for m in slack.messages(channel)),
        90,
        "the model's answer built on the tool result",
    )
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 30, "the turn finished")
    # Exactly one question message, one answer, one tool result reached the model.
    asks = [m for m in slack.messages(channel) if m.get("bot_id") and "asks:" in m.get("text", "")]
    assert len(asks) == 1, "the question was posted once"
    answers = [a for a in fleet.status()[slug]["answers"] if a["action"] == "answered"]
    assert len(answers) == 1
    assert sum(expected in str(m.get("text")) for m in slack.messages(channel)) == 1


@pytest.mark.parametrize("runtime", ["claude", "codex"])
def test_approvals_allow_runs_deny_does_not_and_the_model_is_told(
    fleet: Fleet, slack: Any, runtime: str
) -> None:
    slug = f"perm-{runtime}"
    alice, channel, _ = setup_agent(fleet, slack, slug, runtime, permissions="ask")
    workdir = Path(fleet.agents_by_slug(slug)["workdir"])
    fleet.write_config()
    fleet.start_runner()
    wait_until(lambda: fleet.status().get(slug, {}).get("alive"), 90, f"{slug} alive")
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 90, f"{slug} idle")

    root = slack.post_as_user(alice, channel, "go APPROVE:echo allowed-1 > a1.txt; cat a1.txt")
    msg = wait_until(lambda: ask_message(slack, channel), 90, "the approval as buttons")
    assert msg.get("thread_ts") == root
    assert "a1.txt" in json.dumps(msg["blocks"]) and "wants to run" in json.dumps(msg["blocks"])
    ids = buttons(msg)
    assert {"Allow once", "Deny"} <= set(ids)
    # Codex's hook cannot install a session rule (docs/questions.md): no button for it there.
    assert ("Always allow this session" in ids) == (runtime == "claude")
    assert fleet.status()[slug]["waiting"]["for"] == "approval"
    assert not (workdir / "a1.txt").exists()
    slack.click(alice, channel, msg["ts"], ids["Allow once"], "allow")
    wait_until(
        lambda: answered_in_thread(slack, channel, root, "result: allowed-1"), 90, "the output"
    )
    assert (workdir / "a1.txt").read_text().strip() == "allowed-1"
    closed(slack, channel, msg["ts"], "allowed it once")
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 60, "the turn finished")

    root = slack.post_as_user(alice, channel, "no APPROVE:echo denied-2 > d2.txt; cat d2.txt")
    msg = wait_until(lambda: ask_message(slack, channel), 90, "the second approval")
    slack.click(alice, channel, msg["ts"], buttons(msg)["Deny"], "deny")
    told = wait_until(
        lambda: [
            t
            for t in thread_texts(slack, channel, root)
            if "result:" in t and f"Denied from chat by {alice}" in t.split("result:", 1)[1]
        ],
        90,
        "the model's answer built on the denial",
    )
    assert "denied-2" not in told[0].split("result:", 1)[1]
    assert not (workdir / "d2.txt").exists()
    audit = [a["what"] for a in fleet.status()[slug]["answers"] if a["action"] == "answered"]
    assert audit == ["denied it", "allowed it once"]


@pytest.mark.parametrize("on_timeout", ["default", "refuse"])
def test_nobody_answers_a_reminder_then_the_timeout_policy(
    fleet: Fleet, slack: Any, on_timeout: str
) -> None:
    slug = f"ask-{on_timeout}"
    # The reminder (3 s) comes well before the timeout (30 s) even on a loaded box.
    policy = {"timeout_minutes": 0.5, "remind_after_minutes": 0.05, "on_timeout": on_timeout}
    alice, _, channel = start_claude(fleet, slack, slug, answers=policy)
    root = slack.post_as_user(alice, channel, "pick ASK:Which size?|small|large")
    msg = wait_until(lambda: ask_message(slack, channel), 90, "the question as buttons")
    wait_until(
        lambda: [t for t in thread_texts(slack, channel, msg["thread_ts"]) if "still waiting" in t],
        60,
        "the reminder",
    )
    told = "Nobody answered within 0.5 min"
    wait_until(
        lambda: any(told in t for t in thread_texts(slack, channel, root)), 60, "the channel told"
    )
    closed(slack, channel, msg["ts"], told)
    if on_timeout == "default":
        expected = 'answered: Your questions have been answered: "Which size?"="small"'
    else:
        # Claude hands a PreToolUse deny to the model as a tool error with the reason.
        expected = "hook error: Nobody answered within 0.5 min; the question was not answered."
    wait_until(lambda: answered_in_thread(slack, channel, root, expected), 90, "the model told")
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 60, "the turn went on")
    audit = fleet.status()[slug]["answers"]
    assert [a["action"] for a in audit] == ["timeout"] and audit[0]["user"] == "policy"


def test_claude_multi_select_session_rule_and_a_denial_with_a_reason(
    fleet: Fleet, slack: Any
) -> None:
    slug = "ask-more"
    alice, _, channel = start_claude(fleet, slack, slug, permissions="ask")
    workdir = Path(fleet.agents_by_slug(slug)["workdir"])

    # Multi-select: tick two boxes, then Submit; the labels are joined as the picker does.
    root = slack.post_as_user(alice, channel, "toppings ASKMULTI:Which toppings?|cheese|ham|olives")
    msg = wait_until(lambda: ask_message(slack, channel), 90, "the checkboxes")
    ids = buttons(msg)
    slack.click(alice, channel, msg["ts"], ids["checkboxes"], selected_options=["0", "2"])
    slack.click(alice, channel, msg["ts"], ids["Submit"], "submit")
    told = 'answered: Your questions have been answered: "Which toppings?"="cheese, olives"'
    wait_until(lambda: answered_in_thread(slack, channel, root, told), 90, "the joined labels")
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 60, "idle")

    # Always allow this session: the same command later runs without asking.
    command = "touch k.txt"  # one simple command: Claude checks compound ones part by part
    root = slack.post_as_user(alice, channel, f"one APPROVE:{command}")
    msg = wait_until(lambda: ask_message(slack, channel), 90, "the approval")
    slack.click(alice, channel, msg["ts"], buttons(msg)["Always allow this session"], "session")
    wait_until(lambda: answered_in_thread(slack, channel, root, "result:"), 90, "ran")
    assert (workdir / "k.txt").exists()
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 60, "idle")
    (workdir / "k.txt").unlink()
    root = slack.post_as_user(alice, channel, f"again APPROVE:{command}")
    wait_until(lambda: answered_in_thread(slack, channel, root, "result:"), 90, "ran again")
    assert (workdir / "k.txt").exists()
    approvals = [m for m in slack.messages(channel) if "wants to run" in str(m.get("text"))]
    assert len(approvals) == 1, "the session rule spared the second approval"
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 60, "idle")

    # Deny with a reason: the form's text is what the model reads.
    root = slack.post_as_user(alice, channel, "no APPROVE:echo nope > n.txt")
    msg = wait_until(lambda: ask_message(slack, channel), 90, "the second approval")
    slack.click(alice, channel, msg["ts"], buttons(msg)["Deny with a reason…"], "denywhy")
    view = wait_until(lambda: slack.views(user=alice), 30, "the reason form")[-1]
    slack.submit_view(alice, view["id"], {"answer": {"text": "not on a Friday"}})
    wait_until(
        lambda: answered_in_thread(slack, channel, root, "not on a Friday"), 90, "the reason"
    )
    expected = f"result: Denied from chat by {alice}: not on a Friday"
    wait_until(lambda: answered_in_thread(slack, channel, root, expected), 90, "the model told")
    assert not (workdir / "n.txt").exists()
