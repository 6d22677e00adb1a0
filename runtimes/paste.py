"""Telling that a bracketed paste has landed in a CLI's composer, from two pane captures.

The runner presses Enter as soon as the pasted text is on screen instead of after a fixed
pause: an Enter that reaches the CLI before it has taken in the paste is read as part of it
(a newline inside the prompt, or a prompt split in two). Both CLIs draw a paste in one of two
ways (checked on Claude Code 2.1.328/2.1.332 and Codex 0.136.0/0.169.0/0.171.0):

- short pastes are drawn inline in the composer, wrapped at the pane width;
- long ones as a placeholder: Claude ``[Pasted text #1 +30 lines]``, Codex
  ``[Pasted Content 1234 chars]``.

So a paste counts as shown when, compared with the capture taken just before it, the screen
holds one more copy of the text's last characters (whitespace removed on both sides, so the
wrapping and the composer's indentation do not matter), or one more placeholder. A capture is
only ever compared with the one before the same paste, so text already on screen (an earlier
prompt, the transcript) does not count.
"""

from __future__ import annotations

import re

TAIL = 24
"""How many of the text's last non-blank characters must appear (short enough to be drawn on
one or two rows, long enough not to appear by chance)."""


def _squash(text: str) -> str:
    return "".join(text.split())


def paste_shown(before: str, after: str, text: str, placeholder: re.Pattern[str]) -> bool:
    """Whether ``after`` shows the paste of ``text`` that ``before`` did not."""
    if len(placeholder.findall(after)) > len(placeholder.findall(before)):
        return True
    tail = _squash(text)[-TAIL:]
    if not tail:
        return False
    return _squash(after).count(tail) > _squash(before).count(tail)


def composer_line(screen: str, glyph: str) -> str | None:
    """The composer's first line: the last line of the screen that starts with the CLI's
    prompt glyph (the transcript shows earlier prompts with the same glyph, always above it).
    Compared before and after Enter, it tells that the CLI took the Enter (it cleared, or shows
    its "queued" hint) rather than merely redrawing something else."""
    for line in reversed(screen.splitlines()):
        if line.lstrip().startswith(glyph):
            return line.strip()
    return None
