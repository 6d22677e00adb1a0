"""The durable per-agent prompt queue: nothing handed to the runner is lost or sent twice.

Every prompt (a human's steering, a scheduled prompt, a compaction nudge, ``/compact``, an
ephemeral agent's task) is a row first and a paste second. Rows survive runner restarts. A row
goes ``queued -> delivering -> delivered -> confirmed`` (the runtime echoed the prompt back via
a hook or the transcript), or ends ``dropped`` (no longer needed) or ``failed`` (with a reason).
A row never stays ``delivering``: the deliverer records an outcome on every path (any exception
becomes ``failed``), and :meth:`PromptQueue.recover` fails what a dead runner left behind. A
``failed`` row is never pasted again, since part of it may have reached the agent.

Which kinds may be pasted while the agent is mid-turn: only ``steer``. Both CLIs queue input
typed during a turn and show it to the model at its next step, which is what a person steering
wants. What the CLI then does with several such messages is its own: Claude Code 2.1.332 folds
the ones waiting at a step into one user message (one text block each, now and then two glued
in one block) and may hand a later one to the model before earlier ones still in its queue.
The runner's guarantee ends at the pane: each row pasted once, whole, in order. Scheduled
prompts, nudges, tasks and ``/compact`` wait for a turn boundary (idle), and nothing is pasted
while the agent is starting, compacting, waiting for a permission answer or dead. Within one
agent, eligible items go out oldest first; an item that must wait for idle does not hold back a
steering message behind it.

During a usage limit (activity ``limited``) nothing is pasted: every kind is held. At the reset
the ``continue`` prompt goes first, then the held items in order (a steer as soon as the
continued turn runs, the rest at its end); a nudge no longer needed by then is dropped as ever.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bridge.store.db import Store
from bridge.store.fence import guard_item


class Kind(StrEnum):
    STEER = "steer"
    SCHEDULED = "scheduled"
    NUDGE = "nudge"
    COMPACT = "compact"
    TASK = "task"
    CONTINUE = "continue"
    """The runner's own prompt after a usage limit reset (delivered before anything held)."""


WHILE_WORKING = frozenset({Kind.STEER})


def message_key(channel: str, ts: str) -> str:
    """The dedupe key of a person's chat message: one queue row per message, whoever takes it
    (and the key that ties a thread rooted at that message to the agent it was queued for)."""
    return f"slack:{channel}:{ts}"


@dataclass(frozen=True, slots=True)
class QueueItem:
    id: int
    slug: str
    kind: Kind
    text: str
    source: dict[str, Any]
    status: str
    created_at: float


def _item(row: Any) -> QueueItem:
    source = json.loads(row["source"]) if row["source"] else {}
    return QueueItem(
        row["id"],
        row["slug"],
        Kind(row["kind"]),
        row["text"],
        source,
        row["status"],
        row["created_at"],
    )


def normalized(text: str) -> str:
    """Whitespace-folded text: CLIs echo prompts back with tabs or newlines changed."""
    return " ".join(text.split())


def echoes(pasted: str, reported: str) -> bool:
    """Whether a prompt the runtime reported is the one pasted (both already normalized); a
    CLI may echo it with context around it, or prefixed."""
    return bool(pasted) and (pasted == reported or pasted in reported)


class PromptQueue:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.scope: frozenset[str] | None = None
        """The agents this runner delivers to, when the store is shared with other hosts'
        runners (None: every agent in the store, the single-box case). ``queued()`` and
        ``recover()`` without a slug see only these, so no runner claims another's items."""

    def _scoped(self, sql: str, params: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
        if self.scope is None:
            return sql, params
        if not self.scope:
            return sql + " AND 0 = 1", params
        marks = ", ".join("?" for _ in self.scope)
        return sql + f" AND slug IN ({marks})", (*params, *sorted(self.scope))

    def enqueue(
        self,
        slug: str,
        kind: Kind,
        text: str,
        *,
        source: dict[str, Any] | None = None,
        dedupe_key: str | None = None,
    ) -> int | None:
        """Queue a prompt; None when ``dedupe_key`` was already used (a redelivered event)."""
        with self.store.tx() as db:
            cur = db.execute(
                """INSERT OR IGNORE INTO prompt_queue
                   (slug, kind, text, source, dedupe_key, created_at) VALUES (?, ?, ?, ?, ?, ?)""",
                (slug, str(kind), text, json.dumps(source or {}), dedupe_key, time.time()),
            )
            return cur.lastrowid if cur.rowcount else None

    def get(self, item_id: int) -> QueueItem | None:
        rows = self.store.query("SELECT * FROM prompt_queue WHERE id = ?", (item_id,))
        return _item(rows[0]) if rows else None

    def queued(self, slug: str | None = None) -> list[QueueItem]:
        sql = "SELECT * FROM prompt_queue WHERE status = 'queued'"
        params: tuple[Any, ...] = ()
        if slug is not None:
            sql += " AND slug = ?"
            params = (slug,)
        else:
            sql, params = self._scoped(sql, params)
        return [_item(r) for r in self.store.query(sql + " ORDER BY id", params)]

    def _set(self, item_id: int, status: str, outcome: str | None, column: str | None) -> None:
        """A confirmed row is final: the runtime may echo a prompt before its paste is
        recorded as done (it writes the line the instant Enter lands), and that confirmation
        must not be undone by the ``delivered`` that follows (only its time is kept)."""
        final = "" if status == "confirmed" else " AND status <> 'confirmed'"
        with self.store.tx() as db:
            if status != "dropped":  # an outcome of a paste: the placement's holder's alone
                guard_item(self.store, db, item_id)
            if column:
                cur = db.execute(
                    f"UPDATE prompt_queue SET status = ?, outcome = ?, {column} = ?"
                    f" WHERE id = ?{final}",
                    (status, outcome, time.time(), item_id),
                )
                if not cur.rowcount and column == "delivered_at":
                    db.execute(
                        "UPDATE prompt_queue SET delivered_at = COALESCE(delivered_at, ?)"
                        " WHERE id = ?",
                        (time.time(), item_id),
                    )
            else:
                db.execute(
                    f"UPDATE prompt_queue SET status = ?, outcome = ? WHERE id = ?{final}",
                    (status, outcome, item_id),
                )

    def begin(self, item_id: int) -> bool:
        """Claim an item for delivery; False if someone else already did."""
        with self.store.tx() as db:
            guard_item(self.store, db, item_id)
            cur = db.execute(
                "UPDATE prompt_queue SET status = 'delivering' WHERE id = ? AND status = 'queued'",
                (item_id,),
            )
            return cur.rowcount == 1

    def delivered(self, item_id: int, outcome: str = "pasted") -> None:
        self._set(item_id, "delivered", outcome, "delivered_at")

    def failed(self, item_id: int, reason: str) -> None:
        self._set(item_id, "failed", reason, "delivered_at")

    def dropped(self, item_id: int, reason: str) -> None:
        self._set(item_id, "dropped", reason, None)

    def settle(self, item_id: int, status: str, outcome: str) -> None:
        """The outcome of a claimed (``delivering``) row: ``delivered`` or ``failed``."""
        if status not in ("delivered", "failed"):
            raise ValueError(f"a claimed row ends delivered or failed, not {status!r}")
        self._set(item_id, status, outcome, "delivered_at")

    def confirm(self, slug: str, text: str) -> QueueItem | None:
        """Match a prompt the runtime reported back to the oldest unconfirmed delivery."""
        wanted = normalized(text)
        rows = self.store.query(  # 'delivering': echoed before its paste was recorded done
            """SELECT * FROM prompt_queue WHERE slug = ? AND status IN ('delivering', 'delivered')
               AND confirmed_at IS NULL ORDER BY id""",
            (slug,),
        )
        for row in rows:
            item = _item(row)
            if echoes(normalized(item.source.get("pasted", item.text)), wanted):
                self._set(item.id, "confirmed", "confirmed by the runtime", "confirmed_at")
                return item
        return None

    def recover(self) -> list[QueueItem]:
        """After a runner restart: deliveries cut off mid-paste are failed, loudly.

        Re-pasting could send a prompt twice and dropping it silently would lose it, so the
        item is marked failed with the reason, and the chat side reports it to the sender.
        """
        rows = self.store.query(
            *self._scoped("SELECT * FROM prompt_queue WHERE status = 'delivering'", ())
        )
        items = [_item(r) for r in rows]
        for item in items:
            self.failed(item.id, "the runner restarted during delivery; not re-sent")
        return items

    def counts(self, slug: str) -> dict[str, int]:
        rows = self.store.query(
            "SELECT status, COUNT(*) FROM prompt_queue WHERE slug = ? GROUP BY status", (slug,)
        )
        return {r[0]: int(r[1]) for r in rows}
