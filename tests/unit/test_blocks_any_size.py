"""Every message the product builds stays valid at any input size, and says what it cut.

Generated inputs (seeded ``random``: empty to 100k characters, 0 to 50 options, unicode,
backticks, ``<>&``, newlines) go through each builder (questions single and multi, approvals,
their answered form, the free-text modal, stuck alerts with pane lines); every payload must
pass the Slack emulator's own checks (:func:`validate_blocks`, :func:`check_view`,
:func:`check_text`, called directly: no server) and ``slack_sdk.models``' validators.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bridge.answers.blocks import ask_blocks, closed_blocks, closed_text, fallback_text, modal
from bridge.channel.alerts import alert_text, stuck_blocks
from bridge.chat.redacting import redact_tree
from bridge.devtools.slack_emulator_apibase import check_text
from bridge.devtools.slack_emulator_blocks import text_total, validate_blocks
from bridge.devtools.slack_emulator_model import ApiError
from bridge.devtools.slack_emulator_views import check_view
from bridge.lifecycle.notice import Alert
from bridge.render.fit import MESSAGE_TEXT_BUDGET, cut, cut_tail
from bridge.render.redact import redact
from runtimes.asks import Ask, Option, Question

SIZES = (0, 1, 2, 24, 25, 74, 75, 76, 150, 151, 300, 2000, 2001, 2500, 3000, 3001, 12001)
SIZES += (40_001, 100_000)
PIECES = ("a", "é", "漢", "🙂", "`", "```", "<", ">", "&", "&amp;", "\n", " ", "*", "_", "~")
PIECES += (" password=x ", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789 ")
"""... and secrets: the outbound chokepoint's redaction can lengthen a text."""
CASES = 60


def gen_text(rnd: random.Random) -> str:
    n = rnd.choice(SIZES) if rnd.random() < 0.6 else rnd.randint(0, 5000)
    pieces = rnd.sample(PIECES, rnd.randint(1, len(PIECES)))
    out: list[str] = []
    size = 0
    while size < n:
        piece = rnd.choice(pieces)
        out.append(piece)
        size += len(piece)
    return "".join(out)[:n]


def gen_question(rnd: random.Random) -> Question:
    count = rnd.choice((0, 1, 2, 4, 9, 10, 11, 25, 26, 49, 50))
    options = tuple(
        Option(gen_text(rnd), gen_text(rnd) if rnd.random() < 0.5 else "") for _ in range(count)
    )
    return Question(
        gen_text(rnd), gen_text(rnd) if rnd.random() < 0.5 else "", options, rnd.random() < 0.4
    )


def gen_ask(rnd: random.Random) -> Ask:
    if rnd.random() < 0.5:
        n = rnd.choice((0, 1, 2, 4, 5, 17, 30, 60))
        return Ask("question", "k", "PreToolUse", tuple(gen_question(rnd) for _ in range(n)))
    rule = {"toolName": "Bash"} if rnd.random() < 0.5 else None
    return Ask(
        "approval", "k", "PermissionRequest", tool="Bash", command=gen_text(rnd),
        reason=gen_text(rnd), session_rule=rule,
    )  # fmt: skip


def assert_valid(blocks: Any, limit: int = 50) -> None:
    """Slack's rules twice over: the emulator's checks and slack_sdk's validators."""
    blocks = redact_tree(list(blocks))  # as the outbound chokepoint sends them
    try:
        validate_blocks(blocks, limit, message=limit == 50)
    except ApiError as err:
        pytest.fail(f"emulator refused: {err.error} {err.extra.get('errors')}")
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None, block
        parsed.validate_json()


def assert_text(text: str) -> None:
    text = redact(text)
    check_text(text)
    assert len(text) < 4000  # Slack: keep `text` under 4,000


@pytest.mark.parametrize("seed", range(CASES))
def test_asks_at_any_size(seed: int) -> None:
    rnd = random.Random(seed)
    ask = gen_ask(rnd)
    slug = gen_text(rnd) if rnd.random() < 0.2 else "web"
    assert_valid(ask_blocks(slug, seed, ask))
    outcome = gen_text(rnd)
    assert_valid(closed_blocks(slug, ask, outcome))
    assert_text(fallback_text(slug, ask))
    assert_text(closed_text(slug, ask, outcome))


@pytest.mark.parametrize("seed", range(CASES))
def test_modals_at_any_size(seed: int) -> None:
    rnd = random.Random(seed)
    view = modal(f"q:{seed}:other:0", gen_text(rnd), gen_text(rnd), str(seed), rnd.random() < 0.5)
    view = redact_tree(view)
    check_view(view)
    View(**view).validate_json()


@pytest.mark.parametrize("seed", range(CASES))
def test_stuck_alerts_at_any_size(seed: int) -> None:
    rnd = random.Random(seed)
    alert = Alert("web", "stuck", gen_text(rnd), pane=gen_text(rnd), turn="t1")
    text = alert_text(alert)
    assert_text(text)
    assert_valid(stuck_blocks(text, alert.slug, "a1", alert.turn))


@pytest.mark.parametrize("seed", range(CASES))
def test_cut_keeps_within_any_limit(seed: int) -> None:
    rnd = random.Random(seed)
    text, limit = gen_text(rnd), rnd.randint(1, 5000)
    assert len(redact(cut(text, limit))) <= limit
    assert len(redact(cut_tail(text, limit + 60))) <= limit + 60
    if len(redact(text)) <= limit:
        assert cut(text, limit) == redact(text)


def test_a_huge_command_says_how_much_was_cut() -> None:
    ask = Ask("approval", "k", "PermissionRequest", tool="Write", command="<x>" * 30_000)
    blocks = ask_blocks("web", 1, ask)
    assert_valid(blocks)
    text = blocks[0]["text"]["text"]
    assert "more characters)" in text and text.endswith("```")
    assert "more characters)" in closed_blocks("web", ask, "allowed")[0]["text"]["text"]


def test_many_options_say_answer_with_other() -> None:
    options = tuple(Option(f"choice {i}") for i in range(50))
    ask = Ask("question", "k", "PreToolUse", (Question("Which?", "", options),))
    blocks = ask_blocks("web", 1, ask)
    assert_valid(blocks)
    assert len(blocks) == 50
    shown = sum(1 for b in blocks if "accessory" in b)
    assert f"+{50 - shown} more options: answer with Other" in blocks[1]["text"]["text"]
    multi = Ask("question", "k", "PreToolUse", (Question("Which?", "", options, multi=True),))
    blocks = ask_blocks("web", 1, multi)
    assert_valid(blocks)
    assert "+40 more options: answer with Other" in blocks[1]["text"]["text"]
    assert len(blocks[2]["elements"][0]["options"]) == 10


def test_a_huge_pane_keeps_its_last_lines_and_says_so() -> None:
    pane = "".join(f"line {i}\n" for i in range(20_000)) + "Do you want to proceed?"
    text = alert_text(Alert("web", "stuck", "web looks stuck", pane=pane))
    assert "earlier characters) …" in text and "Do you want to proceed?" in text
    assert text.endswith("\n```")
    assert_valid(stuck_blocks(text, "web", "a1", "t1"))


def test_a_question_of_many_long_options_keeps_within_slacks_total() -> None:
    """Each block within its own limit is not enough: Slack refuses a message whose texts
    total about 13,200 characters (``msg_blocks_too_long``); the longest texts are cut, each
    saying so, the short ones (labels, titles) stay whole."""
    long = "x" * 2500
    options = tuple(Option(f"opt {i}", long) for i in range(10))
    questions = tuple(Question(f"question {q}?", f"H{q}", options, False) for q in range(3))
    blocks = ask_blocks("web", 7, Ask("question", "k", "PreToolUse", questions))
    assert text_total(blocks) <= MESSAGE_TEXT_BUDGET
    assert_valid(blocks)
    texts = json.dumps(blocks)
    assert "more characters)" in texts and "question 2?" in texts and "opt 9" in texts
    with pytest.raises(ApiError, match="msg_blocks_too_long"):
        validate_blocks([{"type": "section", "text": {"type": "mrkdwn", "text": long}}] * 5)
