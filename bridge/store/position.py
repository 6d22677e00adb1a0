"""Where a transcript was read up to: the offset the ledger stores with each post."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Position:
    offset: int
    inode: int | None
    generation: int
