"""Keeping long sessions from running out of context.

Crossing a soft threshold queues one nudge (the agent is asked to wrap up and compact on its
own terms); crossing the hard threshold queues ``/compact`` itself. Both go through the prompt
queue, so they are delivered only at a turn boundary and never on top of a running compaction.
A queued nudge or ``/compact`` whose threshold is no longer exceeded when its moment comes (the
agent compacted meanwhile) is dropped. A compaction re-arms every threshold.

Which thresholds already fired is kept in the state store, keyed by the last compaction seen,
so a runner restart neither re-sends a nudge nor forgets one was due.

A context can also shrink without a compaction event: ``/clear`` or ``/new``, or a compaction
the runner never saw. Then a queued ``/compact`` is dropped as no longer needed, and nothing
else would ever re-arm the guard, not even a restart (the "fired" state is durable). So a
context reported below half the lowest threshold that already fired counts as a reset, and the
guard re-arms under a fresh epoch. Half, not "below", so two sources that disagree slightly
about the size (the status line and the transcript) near a threshold cannot flap it.

The arming is read and written off the event loop (a status line arrives with every hook):
through the lifecycle's :class:`~bridge.store.later.Later`, in order, the latest size of an
agent replacing one not looked at yet. ``note`` may therefore be called from a worker thread.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.config.model import CompactionConfig
from bridge.config.values import resolve_limit
from bridge.store.db import Store
from bridge.store.later import Later
from bridge.store.queue import Kind, PromptQueue, QueueItem

log = logging.getLogger("agentbridge.compaction")

#: Context window assumed until the CLI reports one (Claude's default models: 1M tokens).
DEFAULT_WINDOW = 1_000_000

Note = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class Policy:
    enabled: bool
    soft: tuple[int, ...]
    hard: int
    nudge: str
    escape_first: bool


def policy(cfg: CompactionConfig, self_compacts: bool, window: int | None) -> Policy:
    size = window or DEFAULT_WINDOW
    enabled = cfg.enabled if cfg.enabled is not None else not self_compacts
    soft = tuple(sorted(resolve_limit(limit, size) for limit in cfg.soft))
    return Policy(enabled, soft, resolve_limit(cfg.hard, size), cfg.nudge, cfg.escape_first)


class CompactionGuard:
    def __init__(
        self,
        store: Store,
        queue: PromptQueue,
        policy_of: Callable[[str, int | None], Policy | None],
        note: Note,
        later: Later | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.policy_of = policy_of
        self.note = note
        self.later = later or Later()
        self.tokens: dict[str, int] = {}
        self.windows: dict[str, int] = {}

    # -- persisted arming -------------------------------------------------------------------

    def _armed(self, slug: str) -> dict[str, Any]:
        rows = self.store.query(
            "SELECT value FROM agent_meta WHERE slug = ? AND key = 'guard'", (slug,)
        )
        armed: dict[str, Any] = json.loads(rows[0][0]) if rows else {}
        return {"epoch": "", "fired": [], "hard": False} | armed

    def _save(self, slug: str, armed: dict[str, Any]) -> None:
        with self.store.tx() as db:
            db.execute(
                """INSERT INTO agent_meta (slug, key, value, updated_at) VALUES (?, 'guard', ?, ?)
                   ON CONFLICT(slug, key) DO UPDATE SET value = excluded.value,
                       updated_at = excluded.updated_at""",
                (slug, json.dumps(armed), time.time()),
            )

    # -- inputs ---------------------------------------------------------------------------

    def context(self, slug: str, tokens: int | None, window: int | None = None) -> None:
        if tokens is None:
            return
        self.tokens[slug] = tokens
        if window:
            self.windows[slug] = window
        pol = self.policy_of(slug, self.windows.get(slug))
        if pol is None or not pol.enabled:
            return
        self.later.put(
            f"{slug}: compaction guard at {tokens} tokens",
            lambda: self._check(slug, tokens, pol),
            key=("guard", slug),
        )

    def _check(self, slug: str, tokens: int, pol: Policy) -> None:
        """Fire what ``tokens`` crossed (worker thread: reads and writes the arming)."""
        armed = self._armed(slug)
        if _was_reset(armed, pol, tokens):
            armed = {"epoch": f"reset:{time.time_ns()}", "fired": [], "hard": False}
            self._save(slug, armed)
            log.info("%s: context fell to %s tokens; compaction limits re-armed", slug, tokens)
        fired = {int(x) for x in armed["fired"]}
        epoch = str(armed["epoch"])
        if armed["hard"]:
            return  # /compact is already on its way; nudges would only add noise
        if tokens >= pol.hard:
            armed["hard"] = True
            self._save(slug, armed)
            key = f"compact:{epoch}:{pol.hard}"
            if self.queue.enqueue(
                slug, Kind.COMPACT, "/compact", dedupe_key=key, source={"threshold": pol.hard}
            ):
                self.note(
                    slug,
                    f":broom: Context at {_k(tokens)} tokens (hard limit "
                    f"{_k(pol.hard)}): `/compact` queued for the next idle moment.",
                )
            return
        crossed = [t for t in pol.soft if tokens >= t and t not in fired]
        if not crossed:
            return
        fired.update(crossed)
        armed["fired"] = sorted(fired)
        self._save(slug, armed)
        top = max(crossed)
        key = f"nudge:{epoch}:{top}"
        if self.queue.enqueue(
            slug, Kind.NUDGE, pol.nudge, dedupe_key=key, source={"threshold": top}
        ):
            self.note(
                slug,
                f":hourglass: Context at {_k(tokens)} tokens (soft limit {_k(top)}): "
                "asking the agent to wrap up and compact after this turn.",
            )

    def compacted(self, slug: str, compaction_id: str, pre: int | None, post: int | None) -> None:
        """A compaction happened: re-arm every threshold under a new epoch."""

        def rearm() -> bool:
            armed = self._armed(slug)
            if armed["epoch"] == compaction_id:
                return False  # the same compaction seen again (a re-read after a restart)
            self._save(slug, {"epoch": compaction_id, "fired": [], "hard": False})
            return True

        def rearmed(fresh: bool) -> None:
            if not fresh:
                return
            if post is not None:
                self.tokens[slug] = post
            detail = f" ({_k(pre)} → {_k(post)} tokens)" if pre and post is not None else ""
            self.note(slug, f":white_check_mark: Context compacted{detail}; limits re-armed.")

        self.later.put(f"{slug}: re-arming the compaction guard", rearm, rearmed)

    def still_needed(self, item: QueueItem) -> bool:
        """A nudge or /compact whose threshold is no longer exceeded is not sent."""
        threshold = item.source.get("threshold")
        current = self.tokens.get(item.slug)
        if not isinstance(threshold, int) or current is None:
            return True
        return current >= threshold


def _was_reset(armed: dict[str, Any], pol: Policy, tokens: int) -> bool:
    """The context fell far below a threshold that already fired (see the module docstring)."""
    fired = [int(x) for x in armed["fired"]] + ([pol.hard] if armed["hard"] else [])
    return bool(fired) and tokens < min(fired) // 2


def _k(tokens: int | None) -> str:
    if tokens is None:
        return "?"
    return f"{tokens / 1000:.0f}k" if tokens >= 1000 else str(tokens)
