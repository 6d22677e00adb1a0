"""Codex's pane parsers on real panes of 0.171.0 (``tui_workspace`` on, its default) and 0.136.0.

Captured in tmux (160 columns) against bridge/devtools/fake_openai.py, with the runner's own
launch flags under ``permissions: ask`` (tests/fixtures/codex-0.171.0/, codex-0.136.0/pane-*).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from runtimes import get_runtime
from runtimes.events import EventKind

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CODEX = get_runtime("codex")


def pane(name: str) -> str:
    return (FIXTURES / name).read_text()


@pytest.mark.parametrize(
    ("name", "ready"),
    [
        ("codex-0.171.0/pane-tool.txt", True),
        ("codex-0.171.0/pane-interrupted.txt", True),
        ("codex-0.171.0/pane-limit.txt", True),
        ("codex-0.171.0/pane-working.txt", False),
        ("codex-0.171.0/pane-approve.txt", False),
        ("codex-0.136.0/pane-ready.txt", True),
        ("codex-0.136.0/pane-approve.txt", False),
    ],
)
def test_ready_only_at_the_composer(name: str, ready: bool) -> None:
    """The approval picker's cursor (``› 1. Yes, proceed (y)``) is not the composer: a Codex
    waiting on it is not ready for a prompt."""
    assert CODEX.is_ready_screen(pane(name)) is ready


def test_the_composer_line() -> None:
    assert CODEX.composer(pane("codex-0.171.0/pane-tool.txt")) == "› Ask Codex to do anything"
    assert CODEX.composer(pane("codex-0.171.0/pane-working.txt")) == "› Ask Codex to do anything"
    assert CODEX.composer(pane("codex-0.171.0/pane-approve.txt")) is None
    assert CODEX.composer(pane("codex-0.136.0/pane-approve.txt")) is None


def test_the_tool_call_and_interrupt_lines_are_as_documented() -> None:
    tool = pane("codex-0.171.0/pane-tool.txt")
    assert "• Ran echo hi" in tool and "└ " in tool
    assert "■ Conversation interrupted" in pane("codex-0.171.0/pane-interrupted.txt")


def test_a_limit_line_wrapped_between_try_again_and_at() -> None:
    screen = pane("codex-0.171.0/pane-limit.txt")
    assert "try again\nat " in screen
    (event,) = CODEX.screen_events(screen, time.time())
    assert event.kind is EventKind.USAGE_LIMIT and event.resets_at is not None
