"""The pane fallback's CLI side: Claude's question picker read off a capture, the keys that
answer it, and the launch without the question hook (``answers: {via: pane}``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from bridge.answers.pane import PaneFallback
from bridge.config.asks import AskSettings
from runtimes.asks import Answer, Option, Question
from runtimes.base import LaunchContext
from runtimes.claude import ClaudeRuntime
from runtimes.claude_screen import Picker, parse_picker, picker_keys
from runtimes.codex import CodexRuntime

#: The panes claude 2.1.328 drew (shipped with the tests from shared/fixtures: never skipped).
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures/claude-2.1.328/ask-user-question"
PICKER = (FIXTURES / "pane-picker.txt").read_text()
RULE = "─" * 60

SINGLE = f"""● I need a decision.
{RULE}
 ☐ Color
Which color for zz91?
❯ 1. red-zz91
     the red one
  2. blue-zz91
     the blue one
  3. Type something.
{RULE}
  4. Chat about this
Enter to select · ↑/↓ to navigate · Esc to cancel
"""

MULTI = f"""● Toppings, please.
{RULE}
 ☐ Toppings
Which toppings?
❯ 1. [ ] cheese
     melted
  2. [✔] ham
  3. [ ] olives
  4. [ ] Type something
     Submit
{RULE}
  5. Chat about this
Enter to select · ↑/↓ to navigate · → to review · Esc to cancel
"""

WRAPPED = f"""Here is my plan:
1. read the code
2. ask you
{RULE}
←  ☐ Size  ☐ Shape  ✔ Submit  →
Which size should the very long
generated widget have?
❯ 1. small
  2. large
     takes longer
  3. Type something.
{RULE}
  4. Chat about this
Enter to select · Tab/Arrow keys to navigate · Esc to cancel
"""


@pytest.mark.parametrize(
    ("screen", "question", "header", "labels", "multi", "other"),
    [
        pytest.param(SINGLE, "Which color for zz91?", "Color", ["red-zz91", "blue-zz91"], False, 3),
        pytest.param(MULTI, "Which toppings?", "Toppings", ["cheese", "ham", "olives"], True, 4),
        pytest.param(
            WRAPPED,
            "Which size should the very long generated widget have?",
            "",
            ["small", "large"],
            False,
            3,
        ),
    ],
)
def test_picker_is_read_off_the_screen(
    screen: str, question: str, header: str, labels: list[str], multi: bool, other: int
) -> None:
    picker = parse_picker(screen)
    assert picker is not None
    assert (picker.question, picker.header, picker.multi, picker.other) == (
        question,
        header,
        multi,
        other,
    )
    assert [o.label for o in picker.options] == labels


def test_the_recorded_picker_and_its_descriptions() -> None:
    picker = parse_picker(PICKER)
    assert picker == Picker(
        "Which color for zz91?",
        "Color",
        (Option("red-zz91", "the red one"), Option("blue-zz91", "the blue one")),
        False,
        3,
        ("Color",),
    )
    assert parse_picker((FIXTURES / "pane-after-hook-answer.txt").read_text()) is None


@pytest.mark.parametrize(
    "screen",
    [
        "",
        "❯ \n  ⏵⏵ bypass permissions on (shift+tab to cycle)",
        "1. a list in the answer\n2. another\n",
        f"{RULE}\n ☐ Color\n{RULE}\nEnter to select · Esc to cancel",  # no options
        "Which?\n❯ 1. yes\n  2. no\nEnter to select · Esc to cancel",  # no tab bar
    ],
)
def test_no_picker_gives_none(screen: str) -> None:
    assert parse_picker(screen) is None


def test_keys_for_a_choice_a_multi_choice_and_free_text() -> None:
    single, multi = parse_picker(SINGLE), parse_picker(MULTI)
    assert single is not None and multi is not None
    assert picker_keys(single, "blue-zz91") == (("key", "2"), ("key", "Enter"))
    assert picker_keys(single, "purple please") == (
        ("key", "3"),
        ("text", "purple please"),
        ("key", "Enter"),
    )
    assert picker_keys(multi, "cheese, olives") == (
        ("key", "1"),
        ("key", "3"),
        ("key", "Right"),
        ("key", "Enter"),
    )
    no_other = Picker("Q?", "", (Option("a"),), False, None)
    assert picker_keys(no_other, "something else") == ()


def test_codex_reads_no_picker() -> None:
    assert CodexRuntime().parse_picker(SINGLE) is None


def test_via_pane_leaves_the_question_hook_out(tmp_path: Path) -> None:
    runtime = ClaudeRuntime()
    base = dict(slug="a", workdir=tmp_path, bin="x", env={}, hook_command="/ab hook")
    hooked = runtime.settings(LaunchContext(**base))["hooks"]["PreToolUse"]  # type: ignore[arg-type]
    assert any(h.get("matcher") == "AskUserQuestion" for h in hooked)
    plain = runtime.settings(LaunchContext(**base, ask_hook=False))["hooks"]["PreToolUse"]  # type: ignore[arg-type]
    assert not any(h.get("matcher") == "AskUserQuestion" for h in plain)
    assert all("wait:" not in h["hooks"][0]["command"] for h in plain)
    # Only an agent that sets `via` gets a new launch spec (the others keep their hash).
    assert "ask_via" not in AskSettings().ask_spec()
    pane = AskSettings.model_validate({"answers": {"via": "pane"}})
    assert pane.ask_spec()["ask_via"] == "pane"


class BusyPicker:
    """A multi-select picker in a CLI that reads its input only when it gets round to it (a
    capture is when it does): keys sent meanwhile arrive as one input, which a picker ignores,
    as Claude 2.1.332 does with "13"."""

    def __init__(self) -> None:
        self.unread: list[str] = []
        self.ticked: set[int] = set()
        self.submitted = False
        self.reads = 0

    def capture(self) -> str:
        if len(self.unread) == 1 and self.unread[0].isdigit():
            self.ticked ^= {int(self.unread[0])}
        elif self.unread == ["Enter"]:
            self.submitted = True
        self.reads += bool(self.unread)  # every input taken redraws something
        self.unread.clear()
        return MULTI.replace("[✔] ham", "[ ] ham") + f"\n(inputs read: {self.reads})"

    def send_key(self, key: str, *, settle: float = 0.0) -> None:
        self._send(key, settle)

    def paste(self, text: str, *, submit: bool = False, settle: float = 0.0) -> object:
        self._send(text, settle)
        return None

    def _send(self, key: str, settle: float) -> None:
        self.unread.append(key)
        if settle:  # AgentPane waits for the screen to change: the CLI reads meanwhile
            self.capture()


def test_each_key_waits_for_the_screen_to_show_the_one_before() -> None:
    """The keys go with a settle (AgentPane waits, under the pane's lock, for the screen to
    change; tests/unit/test_tmux_args.py checks that on real tmux), so none is read glued to
    the next."""
    pane = BusyPicker()
    fallback = PaneFallback.__new__(PaneFallback)
    multi = Question(
        "Which toppings?", "Toppings", (Option("cheese"), Option("ham"), Option("olives")), True
    )
    row = SimpleNamespace(ask=SimpleNamespace(questions=(multi,)))
    answer = Answer("answers", {"Which toppings?": "cheese, olives"})
    typed = asyncio.run(fallback._type(row, ClaudeRuntime(), pane, answer))  # type: ignore[arg-type]
    assert typed and pane.ticked == {1, 3} and pane.submitted
