"""Turning untrusted text into a prompt that can only ever arrive as literal text.

A bracketed paste ends at ``ESC [ 201 ~``; anything after it would be read by the CLI as typed
keys (Enter, Ctrl-C, escape sequences). So before text is pasted every ESC and every other C0/C1
control character except newline and tab is removed (without its ESC, ``[201~`` is plain text),
CR/LF pairs become newlines, and the result says how much was dropped so callers can report it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bridge.errors import AgentbridgeError
from bridge.fleet.tmux import SUBMIT_PAUSE_S, AgentPane, Composer, PasteResult, Shown

# C0 controls except \t and \n, DEL, and C1 controls (U+0080-U+009F, which some terminals
# honour as 8-bit escape introducers), plus Unicode line/paragraph separators.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u2028\u2029]")


@dataclass(frozen=True, slots=True)
class CleanText:
    text: str
    dropped: int


def sanitize(text: str) -> CleanText:
    """Strip anything that could act as a keystroke; keep everything printable."""
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    cleaned = _CONTROL.sub("", normalised)
    dropped = len(text) - len(cleaned)
    return CleanText(cleaned.strip("\n"), max(dropped, 0))


class EmptyPrompt(AgentbridgeError, ValueError):
    pass


def steer(
    pane: AgentPane,
    text: str,
    pause: float = SUBMIT_PAUSE_S,
    shown: Shown | None = None,
    composer: Composer | None = None,
) -> PasteResult:
    """Paste sanitised ``text`` into an agent and submit it: Enter once ``shown`` sees the paste
    on screen (at most ``pause`` seconds later), or after ``pause`` without a ``shown`` check."""
    clean = sanitize(text)
    if not clean.text.strip():
        raise EmptyPrompt("nothing to send after removing control characters")
    return pane.paste(clean.text, pause=pause, shown=shown, composer=composer)


def lock_file_for(locks: Path, slug: str) -> Path:
    return locks / f"{slug}.lock"
