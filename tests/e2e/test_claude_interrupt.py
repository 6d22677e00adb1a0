"""Escape on a running Claude turn, through the runner, on both Claude pins (issue 21 item 5).

2.1.337 fires its ``Interrupt`` hook: the runner logs who stopped the turn, the agent goes idle
and the turn's thread keeps a line ":octagonal_sign: interrupted by the user at the terminal".
2.1.332 has no such hook (the runner does not register it: that release would stop at a
settings warning): the transcript's ``[Request interrupted by user for tool use]`` ends the
turn and the line says only "interrupted". Either way the turn really stopped: Claude sends no
tool result to the model. Both panes also show that a fresh config dir reaches the prompt with
no dialog (settings warning, auto-compact offer).
"""

from __future__ import annotations

from typing import Any

import pytest

from bridge.devtools import clis
from tests.conftest import Fleet, wait_until
from tests.e2e.test_slack import setup_agent, thread_texts
from tests.integration.test_runner import wait_ready

pytestmark = pytest.mark.e2e

CLAUDE_PINS = [n for n, p in clis.PINS.items() if p.package == "@anthropic-ai/claude-code"]
#: The line each pin's interrupted turn leaves in its thread.
LINE = {
    "claude": ":octagonal_sign: interrupted by the user at the terminal",
    "claude332": ":octagonal_sign: interrupted",
}
LONG = "RUN: python3 -c 'import time; time.sleep(300)'"


@pytest.mark.parametrize("pin", CLAUDE_PINS)
def test_escape_stops_the_turn_and_its_thread_says_who(fleet: Fleet, slack: Any, pin: str) -> None:
    slug = f"int-{pin}"
    alice, channel, _ = setup_agent(fleet, slack, slug, "claude", version=pin)
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, slug, "claude")
    screen = fleet.capture(slug)
    assert "Settings Warning" not in screen and "autocompact" not in screen.lower(), screen
    ts = slack.post_as_user(alice, channel, LONG)
    wait_until(
        lambda: (
            "time.sleep(300)" in fleet.capture(slug)
            and fleet.status()[slug]["activity"] == "working"
        ),
        90,
        "the tool running",
    )
    wait_until(
        lambda: any(r.kind == "turn" for r in fleet.anthropic.requests), 30, "the model asked"
    )
    fleet.tmux("send-keys", "-t", f"={slug}:", "Escape")
    wait_until(lambda: "Interrupted" in fleet.capture(slug), 30, "Claude's own interrupted line")
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 30, "the agent idle")
    wait_until(
        lambda: LINE[pin] in thread_texts(slack, channel, ts), 60, f"{LINE[pin]!r} in the thread"
    )
    if pin == "claude":
        assert "turn interrupted (source user, reason stop, via terminal)" in fleet.log_text()
    else:
        assert "turn interrupted" not in fleet.log_text()
    assert not any(r.kind == "tool_result" for r in fleet.anthropic.requests), "it went on"
