"""End to end: a question no hook answers is read off the pane and answered by keys.

``answers: {via: pane}`` leaves Claude's blocking question hook out of the launch, so the real
Claude draws its picker; the runner reads it off the screen, posts the same buttons, and types
the click into the picker. What the model received is read back from the fake model's next
answer (``answered: <tool result>``), mirrored into the thread.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Fleet, wait_until
from tests.e2e.test_questions import (
    answered_in_thread,
    ask_message,
    buttons,
    closed,
    current,
    start_claude,
)

pytestmark = pytest.mark.e2e


def test_claude_question_without_hook_is_answered_through_the_pane(
    fleet: Fleet, slack: Any
) -> None:
    slug = "ask-pane"
    alice, mallory, channel = start_claude(
        fleet, slack, slug, answers={"via": "pane", "pane_after_seconds": 1}
    )
    root = slack.post_as_user(alice, channel, "pick one ASK:Which color?|red|blue")
    msg = wait_until(lambda: ask_message(slack, channel), 120, "the question as buttons")
    assert msg.get("thread_ts") == root
    ids = buttons(msg)
    assert {"red", "blue", "Other…"} <= set(ids)
    assert "option blue" in json.dumps(msg["blocks"])

    slack.click(mallory, channel, msg["ts"], ids["blue"], "blue")
    wait_until(lambda: slack.ephemerals(user=mallory), 30, "the refusal")
    assert buttons(current(slack, channel, msg["ts"]))

    slack.click(alice, channel, msg["ts"], ids["blue"], "blue")
    wait_until(
        lambda: answered_in_thread(
            slack,
            channel,
            root,
            'answered: Your questions have been answered: "Which color?"="blue"',
        ),
        90,
        "the model's answer built on the tool result typed into the picker",
    )
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 60, "the turn finished")
    closed(slack, channel, msg["ts"])
    mine = [a for a in fleet.status()[slug]["answers"] if a["user"] == alice]
    assert [a["action"] for a in mine] == ["answered"]
    assert "answered by keys" in fleet.log_text()


def test_free_text_answer_is_typed_into_the_pickers_text_entry(fleet: Fleet, slack: Any) -> None:
    slug = "ask-pane-other"
    alice, _, channel = start_claude(
        fleet, slack, slug, answers={"via": "pane", "pane_after_seconds": 1}
    )
    root = slack.post_as_user(alice, channel, "pick one ASK:Which shade?|light|dark")
    msg = wait_until(lambda: ask_message(slack, channel), 120, "the question as buttons")
    slack.click(alice, channel, msg["ts"], buttons(msg)["Other…"], "other")
    view = wait_until(lambda: slack.views(user=alice), 30, "the free-text form")[-1]
    slack.submit_view(alice, view["id"], {"answer": {"text": "purple please"}})
    wait_until(
        lambda: answered_in_thread(
            slack, channel, root, 'answered: The user answered: "Which shade?"="purple please"'
        ),
        90,
        "the typed free-text answer reaching the model",
    )
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 60, "the turn finished")
    assert "answered by keys" in fleet.log_text()


def test_multi_select_is_ticked_reviewed_and_submitted_by_keys(fleet: Fleet, slack: Any) -> None:
    slug = "ask-pane-multi"
    alice, _, channel = start_claude(
        fleet, slack, slug, answers={"via": "pane", "pane_after_seconds": 1}
    )
    root = slack.post_as_user(alice, channel, "toppings ASKMULTI:Which toppings?|cheese|ham|olives")
    msg = wait_until(lambda: ask_message(slack, channel), 120, "the checkboxes")
    ids = buttons(msg)
    slack.click(alice, channel, msg["ts"], ids["checkboxes"], selected_options=["0", "2"])
    slack.click(alice, channel, msg["ts"], ids["Submit"], "submit")
    told = 'answered: Your questions have been answered: "Which toppings?"="cheese, olives"'
    wait_until(lambda: answered_in_thread(slack, channel, root, told), 90, "the joined labels")
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 60, "the turn finished")
    assert "(multi-select" in fleet.log_text() and "answered by keys" in fleet.log_text()
