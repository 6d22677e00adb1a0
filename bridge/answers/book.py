"""The durable record of asks: open questions and approvals, their answers, and the audit.

Why in the state database: the answer must survive the runner. A person's click is committed
(``answer``, ``answered_by``, status ``answered``) *before* the blocked hook is handed the
answer, so a runner killed in between still has it, and the hook, reconnecting to the next
runner with the same payload, finds the same row by its key and gets that one answer. A row
is claimed by exactly one answer: :meth:`AskBook.answer` only moves an ``open`` row.

Statuses: ``open`` (waiting for a person), ``answered`` (stored, not yet handed over),
``delivered`` (the hook got it), ``abandoned`` (the CLI stopped waiting: interrupted, answered
in the terminal, or its hook timed out).

Synchronous, like :class:`bridge.store.db.Store`; callers on the event loop go through
``asyncio.to_thread``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass
from typing import Any

from bridge.store.db import Conn, Store
from runtimes.asks import Answer, Ask, Option, Question


def ask_to_json(ask: Ask) -> str:
    return json.dumps(asdict(ask))


def ask_from_json(text: str) -> Ask:
    data = json.loads(text)
    questions = tuple(
        Question(
            text=q["text"],
            header=q.get("header", ""),
            options=tuple(Option(**o) for o in q.get("options", ())),
            multi=bool(q.get("multi")),
        )
        for q in data.get("questions", ())
    )
    data["questions"] = questions
    return Ask(**data)


@dataclass(frozen=True, slots=True)
class AskRow:
    id: int
    slug: str
    key: str
    kind: str
    status: str
    ask: Ask
    answer: Answer | None
    answered_by: str | None
    answered_at: float | None
    channel: str | None
    message_ref: str | None
    thread: str | None
    link: str | None
    partial: dict[str, Any]
    reminded_at: float | None
    created_at: float

    @staticmethod
    def of(row: sqlite3.Row) -> AskRow:
        answer = json.loads(row["answer"]) if row["answer"] else None
        return AskRow(
            id=int(row["id"]),
            slug=row["slug"],
            key=row["key"],
            kind=row["kind"],
            status=row["status"],
            ask=ask_from_json(row["request"]),
            answer=Answer.from_json(answer) if answer else None,
            answered_by=row["answered_by"],
            answered_at=row["answered_at"],
            channel=row["channel"],
            message_ref=row["message_ref"],
            thread=row["thread"],
            link=row["link"],
            partial=json.loads(row["partial"]) if row["partial"] else {},
            reminded_at=row["reminded_at"],
            created_at=float(row["created_at"]),
        )


class AskBook:
    def __init__(self, store: Store) -> None:
        self.store = store

    def open_or_create(self, slug: str, ask: Ask) -> tuple[AskRow, bool]:
        """The row a re-sent hook finds again, or a new open one; (row, created).

        A question is found by its key alone (the ``tool_use_id``: one call, one row, which the
        pane fallback shares). An approval's key only digests the turn and the command, so the
        same command asked twice in a turn has the same key: it is found again only by the same
        hook request (:attr:`Ask.request_id`, kept by the hook client across reconnects), in
        whatever state, so a hook that lost the runner's reply gets that one answer again,
        while a new request is asked anew ("Allow once" means once). A request without an id
        (a hook client from before ids) finds an open or answered row by key, never a
        delivered one."""
        with self.store.tx() as db:
            rows = db.execute(
                """SELECT * FROM asks WHERE slug = ? AND key = ?
                   AND status IN ('open', 'answered', 'delivered')
                   ORDER BY id DESC LIMIT 20""",
                (slug, ask.key),
            ).fetchall()
            for found in map(AskRow.of, rows):
                if self._same_request(found, ask):
                    return found, False
            cur = db.execute(
                "INSERT INTO asks (slug, key, kind, request, created_at) VALUES (?, ?, ?, ?, ?)",
                (slug, ask.key, ask.kind, ask_to_json(ask), time.time()),
            )
            row = db.execute("SELECT * FROM asks WHERE id = ?", (cur.lastrowid,)).fetchone()
            return AskRow.of(row), True

    @staticmethod
    def _same_request(row: AskRow, ask: Ask) -> bool:
        if ask.kind == "question":
            return True
        if ask.request_id:
            return row.ask.request_id == ask.request_id
        return row.status != "delivered" and not row.ask.request_id

    def get(self, ask_id: int) -> AskRow | None:
        rows = self.store.query("SELECT * FROM asks WHERE id = ?", (ask_id,))
        return AskRow.of(rows[0]) if rows else None

    def posting(self, ask_id: int, channel: str, thread: str | None) -> None:
        """Where the message is about to go, written before the post: a runner that dies between
        the post and :meth:`posted` leaves this behind, and the next one looks there for the
        message (by its event id) before posting it again."""
        with self.store.tx() as db:
            db.execute(
                "UPDATE asks SET channel = ?, thread = ? WHERE id = ? AND message_ref IS NULL",
                (channel, thread, ask_id),
            )

    def posted(self, ask_id: int, channel: str, ref: str, thread: str | None, link: str) -> None:
        with self.store.tx() as db:
            db.execute(
                "UPDATE asks SET channel = ?, message_ref = ?, thread = ?, link = ? WHERE id = ?",
                (channel, ref, thread, link, ask_id),
            )

    def set_partial(self, ask_id: int, partial: dict[str, Any]) -> None:
        with self.store.tx() as db:
            db.execute(
                "UPDATE asks SET partial = ? WHERE id = ? AND status = 'open'",
                (json.dumps(partial), ask_id),
            )

    def answer(self, ask_id: int, answer: Answer, by: str, detail: str) -> bool:
        """Claim an open row with ``answer``, audited in the same transaction; False when it
        was answered (or abandoned) already."""
        now = time.time()
        with self.store.tx() as db:
            cur = db.execute(
                """UPDATE asks SET status = 'answered', answer = ?, answered_by = ?,
                       answered_at = ? WHERE id = ? AND status = 'open'""",
                (json.dumps(answer.to_json()), by, now, ask_id),
            )
            if cur.rowcount != 1:
                return False
            self._audit(db, ask_id, by, "timeout" if by == "policy" else "answered", detail, now)
            return True

    def delivered(self, ask_id: int) -> None:
        with self.store.tx() as db:
            db.execute(
                "UPDATE asks SET status = 'delivered', delivered_at = ? WHERE id = ?",
                (time.time(), ask_id),
            )

    def abandon(self, ask_id: int) -> bool:
        with self.store.tx() as db:
            cur = db.execute(
                "UPDATE asks SET status = 'abandoned' WHERE id = ? AND status = 'open'", (ask_id,)
            )
            return cur.rowcount == 1

    def reminded(self, ask_id: int) -> None:
        with self.store.tx() as db:
            db.execute("UPDATE asks SET reminded_at = ? WHERE id = ?", (time.time(), ask_id))

    def audit(self, ask_id: int, slug: str, user: str, action: str, detail: str) -> None:
        with self.store.tx() as db:
            db.execute(
                """INSERT INTO answer_audit (ask_id, slug, user, action, detail, at)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                (ask_id, slug, user, action, detail, time.time()),
            )

    @staticmethod
    def _audit(db: Conn, ask_id: int, user: str, action: str, detail: str, at: float) -> None:
        db.execute(
            """INSERT INTO answer_audit (ask_id, slug, user, action, detail, at)
               SELECT id, slug, ?, ?, ?, ? FROM asks WHERE id = ?""",
            (user, action, detail, at, ask_id),
        )

    def open_asks(self, slug: str | None = None) -> list[AskRow]:
        sql = "SELECT * FROM asks WHERE status = 'open'"
        params: tuple[Any, ...] = ()
        if slug is not None:
            sql, params = sql + " AND slug = ?", (slug,)
        return [AskRow.of(r) for r in self.store.query(sql + " ORDER BY id", params)]


def status_of(store: Store, slug: str, limit: int = 10) -> dict[str, Any]:
    """For ``status --json``: what the agent waits for (with the message link) and the most
    recent audited answers (who, when, what), newest first."""
    try:
        waiting = store.query(
            "SELECT kind, request, link, created_at FROM asks WHERE slug = ? AND status = 'open'"
            " ORDER BY id DESC LIMIT 1",
            (slug,),
        )
        audit = store.query(
            "SELECT ask_id, user, action, detail, at FROM answer_audit WHERE slug = ?"
            " ORDER BY id DESC LIMIT ?",
            (slug, limit),
        )
    except sqlite3.Error:  # a state dir from before the asks table (read-only: not migrated)
        return {"waiting": None, "answers": []}
    wait: dict[str, Any] | None = None
    if waiting:
        ask = ask_from_json(waiting[0]["request"])
        what = ask.questions[0].text if ask.questions else ask.command
        wait = {
            "for": waiting[0]["kind"],
            "what": what,
            "link": waiting[0]["link"],
            "since": waiting[0]["created_at"],
        }
    answers = [
        {
            "ask": r["ask_id"],
            "user": r["user"],
            "action": r["action"],
            "what": r["detail"],
            "at": r["at"],
        }
        for r in audit
    ]
    return {"waiting": wait, "answers": answers}
