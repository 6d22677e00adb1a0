"""What of a captured pane counts as a change, for telling a stalled turn from a busy one.

Both CLIs animate a working turn: a spinner glyph, an elapsed-time counter ("Working (10m 13s
• esc to interrupt)"), a retry countdown ("will retry in 3m 28s"). None of that is progress,
so the fingerprint drops digits and the runtime's spinner glyphs; a new output line, a tool
call or a prompt changes it.
"""

from __future__ import annotations

import hashlib
import re

_DIGITS = re.compile(r"\d+")


def fingerprint(screen: str, volatile: str) -> str:
    """A short hash of ``screen`` without digits, ``volatile`` characters and trailing space."""
    table = str.maketrans("", "", volatile)
    lines = [_DIGITS.sub("", line).translate(table).rstrip() for line in screen.splitlines()]
    text = "\n".join(line for line in lines if line)
    return hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()[:16]
