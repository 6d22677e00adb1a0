"""Cleanup of finished reviews: the spawned definition first (so the runner drops the agent),
then the worktree. Shared by the runner (after ``keep_for``) and ``agentbridge review --clean``;
idempotent, so both may run it on the same review.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bridge.config.spawned import spawned_dir
from bridge.review.git import remove_worktree
from bridge.review.ledger import Review, Reviews

log = logging.getLogger("agentbridge.review")


def clean(ledger: Reviews, review: Review, state_dir: Path) -> None:
    if review.slug:
        (spawned_dir(state_dir) / f"{review.slug}.yaml").unlink(missing_ok=True)
    if review.worktree and review.repo:
        remove_worktree(Path(review.repo), Path(review.worktree))
    ledger.update(review.id, status="cleaned")
    log.info("%s: review of #%s cleaned up", review.slug or review.ref, review.number)


def clean_due(ledger: Reviews, state_dir: Path, *, now: float | None = None) -> list[Review]:
    """Clean every finished review whose ``keep_for`` is over (every finished one with
    ``now=float('inf')``); return them."""
    due = ledger.due(now)
    for review in due:
        clean(ledger, review, state_dir)
    return due
