"""Reading only the new, complete lines of a transcript, from a stored byte offset.

The tailer never starts at end-of-file: it resumes where the ledger says the last delivered
line ended, so whatever an agent wrote while the runner was down is caught up. A last line
without its newline is still being written and is left for the next read. A file that shrank
below the offset (truncated) or was replaced by another inode starts over at 0 under a new
generation, so offset-based event ids of the new content cannot collide with the old ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bridge.store.position import Position

READ_CHUNK = 1 << 20
#: A "line" that grows past this without a newline is not a transcript line; it is skipped
#: (and counted bad) so one runaway write cannot hold the tail or the memory hostage.
MAX_LINE = 64 << 20


@dataclass(frozen=True, slots=True)
class Line:
    offset: int
    end: int
    data: bytes
    oversized: bool = False


@dataclass(frozen=True, slots=True)
class ReadResult:
    lines: tuple[Line, ...]
    position: Position
    reset: str | None = None
    """Why the file was re-read from 0 (``truncated`` / ``replaced``), if it was."""


def read_new_lines(path: Path, pos: Position, max_bytes: int = 8 * READ_CHUNK) -> ReadResult:
    """Complete lines after ``pos``, up to about ``max_bytes`` (callers loop for more)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return ReadResult((), pos)
    try:
        st = os.fstat(fd)
        reset = None
        offset, generation = pos.offset, pos.generation
        if pos.inode is not None and st.st_ino != pos.inode:
            reset = "replaced"
        elif st.st_size < offset:
            reset = "truncated"
        if reset:
            offset, generation = 0, generation + 1
        lines: list[Line] = []
        start = offset
        pending = b""
        skipping = False
        while offset < st.st_size and (offset - start) < max_bytes:
            # Grow reads with the pending partial line so a huge line costs linear, not
            # quadratic, copying.
            want = max(READ_CHUNK, len(pending))
            chunk = os.pread(fd, want, offset + len(pending))
            if not chunk:
                break
            buf = pending + chunk
            line_start = offset
            cursor = 0
            while True:
                nl = buf.find(b"\n", cursor)
                if nl < 0:
                    break
                data = buf[cursor:nl]
                end = line_start + nl + 1
                if skipping:
                    lines.append(Line(offset, end, b"", oversized=True))
                    skipping = False
                elif data.strip():
                    lines.append(Line(line_start + cursor, end, data.rstrip(b"\r")))
                else:
                    lines.append(Line(line_start + cursor, end, b""))
                cursor = nl + 1
                offset = end
            pending = buf[cursor:]
            if len(pending) > MAX_LINE:
                skipping = True
                offset += len(pending)
                pending = b""
            if len(chunk) < want:
                break
        return ReadResult(
            tuple(line for line in lines if line.data or line.oversized),
            Position(offset, st.st_ino, generation),
            reset,
        )
    finally:
        os.close(fd)
