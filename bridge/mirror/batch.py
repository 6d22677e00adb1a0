"""What one read pass of a transcript has to post, and how it is cut into messages.

A :class:`Batch` holds the parts (one per rendered piece of a mirrored event) of the lines read
so far in a pass, the position those lines end at, and the malformed lines not yet counted.
:func:`take_group` cuts the next message off the front: one part, or, for a rate-limited
backend, as many consecutive text parts of one thread as fit :data:`COALESCE_LIMIT`. The mirror
calls it only once the backend's posting slot has come, after reading whatever the transcript
gained while it waited, so a burst leaves in as few messages as Slack's pace allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bridge.store.position import Position

COALESCE_LIMIT = 3500
"""Coalesced messages stay well under Slack's 4,000-character comfort limit."""


@dataclass(slots=True)
class Part:
    event_id: str
    text: str
    thread: str | None
    as_file: bool
    filename: str | None
    line_start: int
    line_end: int


@dataclass
class Batch:
    path: str
    position: Position
    """Where the lines read so far in this pass end (grows when a waiting pass reads on)."""
    source: str
    """The short file name event ids are built from."""
    parts: list[Part] = field(default_factory=list)
    bad: list[int] = field(default_factory=list)
    """End offsets of malformed lines not yet counted in a commit."""
    seen: set[str] = field(default_factory=set)
    """Event ids already taken in this pass (a line may repeat an earlier line's event)."""


def take_group(parts: list[Part], i: int, coalesce: bool, alone: set[str]) -> int:
    """The end index of the message starting at ``parts[i]`` (``alone``: ids that must go out
    one per message, after Slack refused the coalesced message holding them)."""
    first = parts[i]
    end = i + 1
    if not coalesce or first.as_file or first.event_id in alone:
        return end
    size = len(first.text)
    while (
        end < len(parts)
        and not parts[end].as_file
        and parts[end].thread == first.thread
        and size + 1 + len(parts[end].text) <= COALESCE_LIMIT
    ):
        size += 1 + len(parts[end].text)
        end += 1
    return end


def at(pos: Position, offset: int) -> Position:
    return Position(offset, pos.inode, pos.generation)
