"""Codex's pane: is it at its input prompt, and which line is the composer.

Re-checked on 0.171.0, whose ``tui_workspace`` drawing is on by default (the panes are the same
with ``-c features.tui_workspace=false``), and on 0.136.0; fixtures
``tests/fixtures/codex-0.171.0/pane-*.txt`` and ``codex-0.136.0/pane-*.txt``. The composer is
the last line that starts with ``›``, followed only by the footer (``gpt-5 default · <dir>``,
``← for agents · ? for shortcuts``). Two other things start with ``›`` too:

- earlier prompts in the transcript above it (always above the composer);
- the cursor of the approval picker, ``› 1. Yes, proceed (y)``, which replaces the composer
  while Codex waits (``Press enter to confirm or esc to cancel``; there is no
  ``esc to interrupt`` on that screen). Counting it as the composer made a waiting Codex look
  ready for a prompt (an adopted agent would have had a paste typed into its picker).
"""

from __future__ import annotations

import re

GLYPH = "›"
#: A picker's cursor line: ``› 1. Yes, proceed (y)``.
_OPTION = re.compile(rf"^\s*{GLYPH}\s*\d+\.\s")
#: What a picker shows under its options (approvals; the question picker says "esc to interrupt").
_PICKER_FOOTER = ("press enter to confirm", "esc to cancel")


def composer_index(lines: list[str]) -> int | None:
    """The index of the composer line, or None when the screen shows none (a picker instead)."""
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].lstrip().startswith(GLYPH):
            if _OPTION.match(lines[i]):
                return None  # the picker's cursor: no composer on this screen
            below = "\n".join(lines[i + 1 :]).lower()
            return None if any(f in below for f in _PICKER_FOOTER) else i
    return None


def is_ready_screen(screen: str) -> bool:
    """At the input prompt: a composer, and no turn running (``esc to interrupt``)."""
    if "esc to interrupt" in screen.lower():
        return False
    return composer_index(screen.splitlines()) is not None


def composer(screen: str) -> str | None:
    lines = screen.splitlines()
    index = composer_index(lines)
    return lines[index].strip() if index is not None else None
