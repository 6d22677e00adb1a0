"""The durable memory of the runner: one SQLite file (WAL) under the state dir.

Why SQLite: the runner must survive SIGKILL at any instant without losing or duplicating a
message, and a single-file transactional store gives that with no server. WAL lets the CLI
(``status``) read while the daemon writes. Schema changes are numbered migrations keyed on
``PRAGMA user_version`` so an upgraded runner opens an older state dir in place.

Threads: all methods are synchronous and serialised by one lock, and any thread may call them
(the connection is opened with ``check_same_thread=False``; the lock, not a thread, owns it).
The daemon calls them from two places. Worker threads (``asyncio.to_thread``): the reconciler's
passes, the deliverer's queue updates, ``status``. The event loop, directly: the short indexed
reads and single-row writes that signals cause (a hook's bookkeeping, the compaction guard,
activity, the mirror's ledger entries per posted message, a queued prompt). Those block the
loop for one statement: cheap in WAL mode with ``synchronous=NORMAL`` (no fsync per commit),
but a loop call waits while a worker thread holds the lock, so nothing long runs under it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIGRATIONS: tuple[str, ...] = (
    # 1: agents and their launches
    """
    CREATE TABLE agents (
        slug TEXT PRIMARY KEY,
        runtime TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        runtime_session_id TEXT,
        state TEXT NOT NULL DEFAULT 'starting',
        restarts INTEGER NOT NULL DEFAULT 0,
        spec_hash TEXT,
        crash_loop_since REAL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE launches (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        slug TEXT NOT NULL,
        pid INTEGER,
        session_id TEXT,
        resumed INTEGER NOT NULL DEFAULT 0,
        argv TEXT,
        started_at REAL NOT NULL,
        exited_at REAL,
        exit_reason TEXT
    );
    CREATE INDEX launches_slug ON launches(slug, started_at);
    """,
    # 2: transcript offsets, the delivery ledger, parse counters
    """
    CREATE TABLE transcripts (
        slug TEXT NOT NULL,
        path TEXT NOT NULL,
        session_id TEXT,
        offset INTEGER NOT NULL DEFAULT 0,
        inode INTEGER,
        generation INTEGER NOT NULL DEFAULT 0,
        finished INTEGER NOT NULL DEFAULT 0,
        bad_lines INTEGER NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL,
        PRIMARY KEY (slug, path)
    );
    CREATE TABLE ledger (
        slug TEXT NOT NULL,
        event_id TEXT NOT NULL,
        status TEXT NOT NULL,
        chat_ref TEXT,
        payload TEXT,
        created_at REAL NOT NULL,
        posted_at REAL,
        PRIMARY KEY (slug, event_id)
    );
    CREATE INDEX ledger_pending ON ledger(status) WHERE status = 'pending';
    """,
    # 3: hook tokens, the durable prompt queue, activity
    """
    CREATE TABLE hook_tokens (
        slug TEXT PRIMARY KEY,
        token TEXT NOT NULL,
        issued_at REAL NOT NULL
    );
    CREATE TABLE prompt_queue (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        slug TEXT NOT NULL,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        source TEXT,
        dedupe_key TEXT,
        status TEXT NOT NULL DEFAULT 'queued',
        outcome TEXT,
        created_at REAL NOT NULL,
        delivered_at REAL,
        confirmed_at REAL
    );
    CREATE INDEX prompt_queue_open ON prompt_queue(slug, status);
    CREATE UNIQUE INDEX prompt_queue_dedupe ON prompt_queue(slug, dedupe_key)
        WHERE dedupe_key IS NOT NULL;
    ALTER TABLE agents ADD COLUMN activity TEXT NOT NULL DEFAULT 'starting';
    ALTER TABLE agents ADD COLUMN activity_since REAL;
    ALTER TABLE agents ADD COLUMN context_tokens INTEGER;
    ALTER TABLE agents ADD COLUMN context_window INTEGER;
    """,
    # 4: small per-agent facts (compaction guard arming, ...)
    """
    CREATE TABLE agent_meta (
        slug TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (slug, key)
    );
    """,
    # 5: where each turn's prompt was routed (thread, header, echo), so a re-read line is routed
    # from durable state, not from the memory of a runner that may have died
    """
    CREATE TABLE turn_routes (
        slug TEXT NOT NULL,
        event_id TEXT NOT NULL,
        path TEXT NOT NULL,
        generation INTEGER NOT NULL,
        line_offset INTEGER NOT NULL,
        thread TEXT,
        skip INTEGER NOT NULL DEFAULT 0,
        header TEXT,
        item_id INTEGER,
        created_at REAL NOT NULL,
        PRIMARY KEY (slug, event_id)
    );
    CREATE INDEX turn_routes_at ON turn_routes(slug, path, generation, line_offset);
    CREATE INDEX turn_routes_item ON turn_routes(slug, item_id) WHERE item_id IS NOT NULL;
    """,
    # 6: agents' questions and approvals waiting on a person, and who answered what
    """
    CREATE TABLE asks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        slug TEXT NOT NULL,
        key TEXT NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'open',
        request TEXT NOT NULL,
        answer TEXT,
        answered_by TEXT,
        answered_at REAL,
        delivered_at REAL,
        channel TEXT,
        message_ref TEXT,
        thread TEXT,
        link TEXT,
        partial TEXT,
        reminded_at REAL,
        created_at REAL NOT NULL
    );
    CREATE INDEX asks_key ON asks(slug, key);
    CREATE INDEX asks_open ON asks(status) WHERE status IN ('open', 'answered');
    CREATE TABLE answer_audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ask_id INTEGER NOT NULL,
        slug TEXT NOT NULL,
        user TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT,
        at REAL NOT NULL
    );
    CREATE INDEX answer_audit_slug ON answer_audit(slug, at);
    """,
)


@dataclass(frozen=True, slots=True)
class AgentRow:
    slug: str
    runtime: str
    agent_id: str
    runtime_session_id: str | None
    state: str
    restarts: int
    spec_hash: str | None
    crash_loop_since: float | None
    updated_at: float
    activity: str = "starting"
    activity_since: float | None = None
    context_tokens: int | None = None
    context_window: int | None = None


@dataclass(frozen=True, slots=True)
class LaunchRow:
    id: int
    slug: str
    pid: int | None
    session_id: str | None
    resumed: bool
    argv: str | None
    started_at: float
    exited_at: float | None
    exit_reason: str | None


class Store:
    """One connection, one lock, short transactions."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self._lock = threading.RLock()
        if readonly:
            uri = f"file:{path}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=10)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        self._db.row_factory = sqlite3.Row

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; everything inside commits together or not at all."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, params))

    def _migrate(self) -> None:
        with self._lock:
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                self._db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")

    # -- agents --------------------------------------------------------------------------

    def upsert_agent(self, slug: str, runtime: str, agent_id: str, spec_hash: str) -> None:
        with self.tx() as db:
            db.execute(
                """INSERT INTO agents (slug, runtime, agent_id, spec_hash, updated_at)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT(slug) DO UPDATE SET runtime = excluded.runtime,
                       agent_id = excluded.agent_id, spec_hash = excluded.spec_hash""",
                (slug, runtime, agent_id, spec_hash, time.time()),
            )

    def agent(self, slug: str) -> AgentRow | None:
        rows = self.query("SELECT * FROM agents WHERE slug = ?", (slug,))
        return AgentRow(**dict(rows[0])) if rows else None

    def agents(self) -> list[AgentRow]:
        return [AgentRow(**dict(r)) for r in self.query("SELECT * FROM agents ORDER BY slug")]

    def set_state(self, slug: str, state: str, *, crash_loop_since: float | None = None) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE agents SET state = ?, crash_loop_since = ?, updated_at = ? WHERE slug = ?",
                (state, crash_loop_since, time.time(), slug),
            )

    def set_runtime_session(self, slug: str, session_id: str | None) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE agents SET runtime_session_id = ?, updated_at = ? WHERE slug = ?",
                (session_id, time.time(), slug),
            )

    def count_restart(self, slug: str) -> None:
        with self.tx() as db:
            db.execute("UPDATE agents SET restarts = restarts + 1 WHERE slug = ?", (slug,))

    def set_activity(
        self, slug: str, activity: str, context_tokens: int | None, context_window: int | None
    ) -> None:
        with self.tx() as db:
            db.execute(
                """UPDATE agents SET activity = ?, activity_since = ?,
                       context_tokens = COALESCE(?, context_tokens),
                       context_window = COALESCE(?, context_window) WHERE slug = ?""",
                (activity, time.time(), context_tokens, context_window, slug),
            )

    def forget_agent(self, slug: str) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE agents SET state = 'removed', updated_at = ? WHERE slug = ?",
                (time.time(), slug),
            )

    # -- launches ------------------------------------------------------------------------

    def record_launch(
        self, slug: str, pid: int | None, session_id: str | None, resumed: bool, argv: str
    ) -> int:
        with self.tx() as db:
            cur = db.execute(
                """INSERT INTO launches (slug, pid, session_id, resumed, argv, started_at)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                (slug, pid, session_id, int(resumed), argv, time.time()),
            )
            return int(cur.lastrowid or 0)

    def update_launch(
        self, launch_id: int, *, pid: int | None = None, session_id: str | None = None
    ) -> None:
        with self.tx() as db:
            if pid is not None:
                db.execute("UPDATE launches SET pid = ? WHERE id = ?", (pid, launch_id))
            if session_id is not None:
                db.execute(
                    "UPDATE launches SET session_id = ? WHERE id = ?", (session_id, launch_id)
                )

    def end_launch(self, slug: str, reason: str) -> None:
        """Close the open launch of an agent, if any (idempotent)."""
        with self.tx() as db:
            db.execute(
                """UPDATE launches SET exited_at = ?, exit_reason = ?
                   WHERE slug = ? AND exited_at IS NULL""",
                (time.time(), reason, slug),
            )

    def current_launch(self, slug: str) -> LaunchRow | None:
        rows = self.query("SELECT * FROM launches WHERE slug = ? ORDER BY id DESC LIMIT 1", (slug,))
        if not rows:
            return None
        data = dict(rows[0])
        data["resumed"] = bool(data["resumed"])
        return LaunchRow(**data)

    def launch_failures_since(self, slug: str, since: float) -> int:
        rows = self.query(
            """SELECT COUNT(*) FROM launches WHERE slug = ? AND exited_at IS NOT NULL
               AND exit_reason NOT IN ('stopped', 'removed', 'restarted', 'done')
               AND exited_at >= ?""",
            (slug, since),
        )
        return int(rows[0][0])
