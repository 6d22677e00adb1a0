"""``agentbridge review``: the command line's side of a review.

The runner owns everything a review needs (``gh``, git, the chat backend, the spawned agents),
so the command line only records a request in the state db, like ``agentbridge send`` queues a
prompt, and reports what the runner made of it. ``--clean`` is the exception: it removes
finished reviews itself, so it also works while no runner is up.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bridge.config import paths
from bridge.review.clean import clean_due
from bridge.review.ledger import Reviews
from bridge.store.db import Store


def clean_now(state_dir: Path) -> int:
    ledger = Reviews(Store(paths.db_path(state_dir)))
    cleaned = clean_due(ledger, state_dir, now=float("inf"))
    for review in cleaned:
        print(f"{review.slug or review.ref}: removed {review.worktree or 'nothing'}")
    left = len(ledger.running())
    print(f"cleaned {len(cleaned)} finished review(s); {left} still running, left alone")
    return 0


def ask(state_dir: Path, pr: str, template: str | None, wait: float, alive: bool) -> int:
    ledger = Reviews(Store(paths.db_path(state_dir)))
    request = ledger.request(pr, template, "cli")
    if not alive:
        print(f"queued (#{request}): no runner is running; the review starts when one does")
        return 0
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        review = ledger.get(request)
        if review is not None and review.status == "refused":
            print(f"agentbridge: {review.note}", file=sys.stderr)
            return 1
        if review is not None and review.status == "failed":
            print(f"agentbridge: review of #{review.number} failed: {review.note}", file=sys.stderr)
            return 1
        if review is not None and review.status != "requested" and review.header:
            print(
                f"reviewing #{review.number} {review.title} (head {review.head}) as {review.slug}"
            )
            return 0
        time.sleep(0.2)
    print(f"queued (#{request}); the runner starts it shortly")
    return 0
