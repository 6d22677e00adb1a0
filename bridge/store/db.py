"""The durable memory of the runner: one SQLite file (WAL) under the state dir.

Why SQLite: the runner must survive SIGKILL at any instant without losing or duplicating a
message, and a single-file transactional store gives that with no server. WAL lets the CLI
(``status``) read while the daemon writes. Schema changes are numbered migrations keyed on
``PRAGMA user_version`` so an upgraded runner opens an older state dir in place.

Threads: all methods are synchronous and serialised by one lock, and any thread may call them
(the connection is opened with ``check_same_thread=False``; the lock, not a thread, owns it).
The daemon calls them only from worker threads, never from the event loop: async code awaits
``asyncio.to_thread``, and the signals' bookkeeping that arrives in synchronous callbacks (a
hook, an activity change, a confirmed prompt, the compaction guard) goes through
:class:`bridge.store.later.Later`. On Postgres one statement can wait seconds for a connection
(the server restarting), and every agent's hooks and Slack's acks would wait with it; the
runner's loop-lag warning (:func:`bridge.aio.watch_lag`) says when something blocks the loop.
The constructors that load a table once (the hook tokens, the limit waits, a mirror's
transcript position) still read at start-up, before anything is served.

Two engines share this interface (``tx()`` yielding a :class:`Conn`, ``query()`` returning rows
that index by position and by name): this SQLite one, the default, and
:class:`bridge.store.pg.PgStore` for a fleet spread over several hosts (``docs/scaling.md``).
:data:`MIGRATIONS` is the one schema for both: append a plain SQL string in the portable subset
:mod:`bridge.store.dialect` describes, and never edit a migration that has shipped (SQLite state
dirs upgrade by position, keyed on ``PRAGMA user_version``).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bridge.store.schema import MIGRATIONS


class Cursor(Protocol):
    """What callers use of a statement's result (sqlite3's cursor, or the Postgres one)."""

    @property
    def rowcount(self) -> int: ...

    @property
    def lastrowid(self) -> int | None: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    """The connection ``tx()`` yields: ``?`` placeholders, SQLite-flavoured SQL (both engines)."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...


def execute_unless_taken(db: Conn, sql: str, parameters: Sequence[Any]) -> Cursor | None:
    """Run a statement a unique index may refuse (a racing writer got there first): None when
    it was refused, and the transaction around it goes on. The savepoint is what makes that
    true on Postgres, which otherwise aborts the whole transaction at the first error."""
    db.execute("SAVEPOINT unless_taken")
    try:
        cursor = db.execute(sql, parameters)
    except Exception as err:
        db.execute("ROLLBACK TO SAVEPOINT unless_taken")
        db.execute("RELEASE SAVEPOINT unless_taken")
        # sqlite3's IntegrityError, or any psycopg error with SQLSTATE unique_violation
        if isinstance(err, sqlite3.IntegrityError) or getattr(err, "sqlstate", "") == "23505":
            return None
        raise
    db.execute("RELEASE SAVEPOINT unless_taken")
    return cursor


class PlacementCheck(Protocol):
    """What the store asks of :class:`bridge.store.fence.Fence` (kept a protocol here, so the
    fence may import this module)."""

    def check(self, db: Conn, slug: str) -> None: ...

    def check_row(self, db: Conn, table: str, row_id: int) -> None: ...


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

    engine = "sqlite"
    shared = False
    """Whether several runners (hosts) share this store (Postgres) or it is this runner's own."""
    fence: PlacementCheck | None = None
    """Armed by a runner on a shared store: the placement check of :mod:`bridge.store.fence`."""

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

    def after_import(self, db: Conn, identity_tables: list[str]) -> None:
        """Bookkeeping after rows arrived with their own ids (``state import``): none here,
        SQLite's AUTOINCREMENT counter follows explicit ids by itself."""

    @contextmanager
    def tx(self) -> Iterator[Conn]:
        """A write transaction; everything inside commits together or not at all."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return list(self._db.execute(sql, params))

    def schema_version(self) -> int:
        """How many of :data:`MIGRATIONS` this database has applied."""
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def describe(self) -> str:
        """Where the data is, for logs and ``doctor`` (never a password)."""
        return str(self.path)

    def _migrate(self) -> None:
        with self._lock:
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                self._db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")

    def _fenced(self, db: Conn, slug: str | tuple[str, int]) -> None:
        """The placement check of :mod:`bridge.store.fence` (a runner on a shared store), for
        an agent by slug or by one of its rows (table, id)."""
        if self.fence is None:
            return
        if isinstance(slug, tuple):
            self.fence.check_row(db, *slug)
        else:
            self.fence.check(db, slug)

    # -- agents --------------------------------------------------------------------------

    def upsert_agent(self, slug: str, runtime: str, agent_id: str, spec_hash: str) -> None:
        with self.tx() as db:
            self._fenced(db, slug)
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
            self._fenced(db, slug)
            db.execute(
                "UPDATE agents SET state = ?, crash_loop_since = ?, updated_at = ? WHERE slug = ?",
                (state, crash_loop_since, time.time(), slug),
            )

    def set_runtime_session(self, slug: str, session_id: str | None) -> None:
        with self.tx() as db:
            self._fenced(db, slug)
            db.execute(
                "UPDATE agents SET runtime_session_id = ?, updated_at = ? WHERE slug = ?",
                (session_id, time.time(), slug),
            )

    def count_restart(self, slug: str) -> None:
        with self.tx() as db:
            self._fenced(db, slug)
            db.execute("UPDATE agents SET restarts = restarts + 1 WHERE slug = ?", (slug,))

    def set_activity(
        self, slug: str, activity: str, context_tokens: int | None, context_window: int | None
    ) -> None:
        with self.tx() as db:
            self._fenced(db, slug)
            db.execute(
                """UPDATE agents SET activity = ?, activity_since = ?,
                       context_tokens = COALESCE(?, context_tokens),
                       context_window = COALESCE(?, context_window) WHERE slug = ?""",
                (activity, time.time(), context_tokens, context_window, slug),
            )

    def forget_agent(self, slug: str) -> None:
        with self.tx() as db:
            self._fenced(db, slug)
            db.execute(
                "UPDATE agents SET state = 'removed', updated_at = ? WHERE slug = ?",
                (time.time(), slug),
            )

    # -- launches ------------------------------------------------------------------------

    def record_launch(
        self, slug: str, pid: int | None, session_id: str | None, resumed: bool, argv: str
    ) -> int:
        with self.tx() as db:
            self._fenced(db, slug)
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
            self._fenced(db, ("launches", launch_id))
            if pid is not None:
                db.execute("UPDATE launches SET pid = ? WHERE id = ?", (pid, launch_id))
            if session_id is not None:
                db.execute(
                    "UPDATE launches SET session_id = ? WHERE id = ?", (session_id, launch_id)
                )

    def end_launch(self, slug: str, reason: str) -> None:
        """Close the open launch of an agent, if any (idempotent)."""
        with self.tx() as db:
            self._fenced(db, slug)
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
