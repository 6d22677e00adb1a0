"""The shared engine: the same :class:`~bridge.store.db.Store` interface on PostgreSQL.

Selected by ``AGENTBRIDGE_DATABASE_URL`` or the config's ``store:`` key (see
:mod:`bridge.store.engine`), so several runners on several hosts share one database
(``docs/scaling.md``). psycopg 3 with a connection pool; every statement written for SQLite is
rewritten by :mod:`bridge.store.dialect`, so callers keep their ``?`` SQL.

Transactions: each ``tx()`` is one transaction on a pooled connection (READ COMMITTED, enough
with one writer per agent and conditional claims). One addition: a *joined* transaction. The
inbound drain (:mod:`bridge.cluster.router`) claims an event row and, while its transaction is
open, runs the normal inbound code, whose ``enqueue`` then commits together with the row's
``done`` mark. It does so with :meth:`PgStore.join`; ``tx()`` and ``query()`` in that context
use the drain's connection instead of a pooled one. A statement that fails inside a joined
transaction marks it failed, so the drain rolls back instead of marking the row done.

Nothing outlives the transaction it joined: the join belongs to the task that made it (and to
the worker threads that task hands its calls to, ``asyncio.to_thread``, which copies its
context). A task spawned meanwhile (a click's "Interrupt and continue" queues its continue
prompt seconds later) would inherit the context variable; it does not inherit the join: tasks
created while a join is open start with none (:func:`_unjoined_task`), and a statement from any
other task on the loop ignores it. Such work commits on its own connection, whatever becomes of
the drain's transaction.

The pool checks a connection before handing it out (``check=``): after a Postgres restart
every pooled connection is dead, and without the check each would be handed out once, to fail.
Waiting for a connection gives up after :data:`CONNECT_TIMEOUT_S` (a store error the core loops
retry, :mod:`bridge.store.retry`), and reconnection attempts restart their backoff often enough
that the pool is whole again within seconds of the server's return.

Migrations: :data:`~bridge.store.db.MIGRATIONS` in order, each in its own transaction, counted
in a one-row ``schema_version`` table, under ``pg_advisory_lock`` so two runners starting at
once do not both apply one.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Coroutine, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import RowMaker
from psycopg_pool import ConnectionPool

from bridge.store import dialect
from bridge.store.db import Conn, Store
from bridge.store.schema import MIGRATIONS

#: pg_advisory_lock key for migrations ("agentbridge" folded into a bigint).
MIGRATION_LOCK = 0x61676E7462726467

CONNECT_TIMEOUT_S = 5.0
"""How long a statement waits for a pooled connection before it fails (Postgres away)."""
RECONNECT_WINDOW_S = 6.0
"""The pool's reconnection backoff (1 s, doubling) starts over after this long, so its attempts
stay a few seconds apart however long the server was away."""


class Row:
    """A result row that indexes like ``sqlite3.Row``: by position, by name, ``dict(row)``."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict[str, int], values: Sequence[Any]) -> None:
        self._index = index
        self._values = tuple(values)

    def __getitem__(self, key: int | str) -> Any:
        return self._values[self._index[key] if isinstance(key, str) else key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values, strict=True))!r})"


def _rows(cursor: psycopg.Cursor[Any]) -> RowMaker[Row]:
    names = [c.name for c in cursor.description or ()]
    index = {name: i for i, name in enumerate(names)}
    return lambda values: Row(index, values)


def _params(params: Sequence[Any]) -> tuple[Any, ...]:
    """SQLite stores booleans as integers, and the schema says INTEGER: keep it so."""
    return tuple(int(p) if isinstance(p, bool) else p for p in params)


class PgCursor:
    def __init__(self, cursor: psycopg.Cursor[Row], returning: bool) -> None:
        self._cursor = cursor
        self.rowcount = cursor.rowcount
        self.lastrowid: int | None = None
        if returning:
            row = cursor.fetchone()
            self.lastrowid = int(row[0]) if row is not None else None

    def fetchone(self) -> Any:
        return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall() if self._cursor.description else []

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class PgConn:
    """A psycopg connection speaking the SQLite-flavoured SQL of the callers."""

    def __init__(self, conn: psycopg.Connection[Any], schema: dialect.Schema) -> None:
        self.conn = conn
        self.schema = schema
        self.failed = False

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> PgCursor:
        text, returning = dialect.query(sql, self.schema, with_params=bool(parameters))
        cursor = self.conn.cursor(row_factory=_rows)
        try:
            cursor.execute(text.encode(), _params(parameters) if parameters else None)
        except BaseException:
            self.failed = True
            raise
        if text.lstrip().upper().startswith("ROLLBACK TO"):
            self.failed = False  # the savepoint undid the failed statement; the rest stands
        return PgCursor(cursor, returning)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> PgCursor:
        text, _ = dialect.query(sql, self.schema)
        cursor = self.conn.cursor(row_factory=_rows)
        try:
            cursor.executemany(text.encode(), [_params(p) for p in parameters])
        except BaseException:
            self.failed = True
            raise
        return PgCursor(cursor, False)


@dataclass(frozen=True, slots=True)
class _Join:
    conn: PgConn
    owner: asyncio.Task[Any] | None
    """The task that joined; None when the join was made outside any event loop."""


_ALL_JOINS: list[contextvars.ContextVar[_Join | None]] = []
"""Every store's join variable, for :func:`_unjoined_task` (one per store; a handful)."""


def _unjoined_task(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
    **kwargs: Any,
) -> asyncio.Task[Any]:
    """The loop's task factory while stores are joined: a new task runs in a copy of its
    creator's context with every join cleared, so it can never write into (and be rolled back
    with) a transaction it did not open."""
    context = kwargs.pop("context", None)
    if context is None:
        context = contextvars.copy_context()
    for var in _ALL_JOINS:
        context.run(var.set, None)
    return asyncio.Task(coro, loop=loop, context=context, **kwargs)


def _install_task_factory() -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # no loop in this thread: no task can be spawned from here
    factory = loop.get_task_factory()
    if factory is None:
        loop.set_task_factory(_unjoined_task)
    elif factory is not _unjoined_task:  # someone else's: ours must not replace it silently
        raise RuntimeError("PgStore.join: the event loop already has a task factory")


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None  # a worker thread: no loop here


class PgStore(Store):
    engine = "postgres"
    shared = True

    def __init__(self, url: str, *, readonly: bool = False, max_size: int = 8) -> None:
        self.url = url
        self.path = None  # type: ignore[assignment]
        self._lock = threading.RLock()
        self.schema = dialect.Schema(MIGRATIONS)
        self.joined: contextvars.ContextVar[_Join | None] = contextvars.ContextVar(
            f"agentbridge_joined_{id(self)}", default=None
        )
        """An open transaction this store's ``tx()``/``query()`` join (see :meth:`join`)."""
        _ALL_JOINS.append(self.joined)
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True},
            open=False,
            name="agentbridge",
            check=ConnectionPool.check_connection,
            timeout=CONNECT_TIMEOUT_S,
            reconnect_timeout=RECONNECT_WINDOW_S,
        )
        self.pool.open(wait=True, timeout=30)
        self.readonly = readonly
        if not readonly or self.schema_version() == 0:
            # A read-only open (``status``, ``doctor``) of a database no runner has set up yet
            # migrates it too: the schema is the same whoever creates it (advisory lock), and a
            # fleet-wide view of an empty schema is still a view.
            self._migrate()

    def close(self) -> None:
        self.pool.close()
        with contextlib.suppress(ValueError):
            _ALL_JOINS.remove(self.joined)

    def after_import(self, db: Conn, identity_tables: list[str]) -> None:
        """Rows arrived with their own ids: each identity's next value goes past them."""
        for table in identity_tables:
            db.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            )

    def joined_conn(self) -> PgConn | None:
        """The transaction this call joins: the one its own task opened with :meth:`join`, if
        any. From a worker thread the join came with the context ``asyncio.to_thread`` copied
        from the task that holds it (spawned tasks never carry one: see the module doc)."""
        join = self.joined.get()
        if join is None:
            return None
        if join.owner is not None and _current_task() not in (None, join.owner):
            return None  # another task on the loop: not its transaction
        if join.owner is not None and _current_task() is None and _on_loop_thread():
            return None  # a plain callback on the loop, scheduled from inside the join
        return join.conn

    @contextmanager
    def tx(self) -> Iterator[Conn]:
        joined = self.joined_conn()
        if joined is not None:
            try:
                yield joined
            except BaseException:
                joined.failed = True
                raise
            return
        with self.pool.connection() as conn, conn.transaction():
            yield PgConn(conn, self.schema)

    @contextmanager
    def claimed(self) -> Iterator[PgConn]:
        """A transaction for the caller to hold open and :meth:`join`: committed on a
        normal exit unless a statement in it failed, else rolled back."""
        with self.pool.connection() as conn:
            conn.execute("BEGIN")
            pg = PgConn(conn, self.schema)
            try:
                yield pg
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("ROLLBACK" if pg.failed else "COMMIT")

    @contextmanager
    def join(self, conn: PgConn) -> Iterator[None]:
        """Within this block, this task's statements on this store (its own, and those it runs
        in worker threads) join ``conn``; no other task's do."""
        _install_task_factory()
        token = self.joined.set(_Join(conn, _current_task()))
        try:
            yield
        finally:
            with contextlib.suppress(ValueError):  # closed from another context (shutdown)
                self.joined.reset(token)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        joined = self.joined_conn()
        if joined is not None:
            return joined.execute(sql, params).fetchall()
        with self.pool.connection() as conn:
            return PgConn(conn, self.schema).execute(sql, params).fetchall()

    def schema_version(self) -> int:
        with self.pool.connection() as conn:
            exists = conn.execute("SELECT to_regclass('schema_version')").fetchone()
            if exists is None or exists[0] is None:
                return 0
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            return int(row[0]) if row else 0

    def describe(self) -> str:
        info = psycopg.conninfo.conninfo_to_dict(self.url)
        info.pop("password", None)
        return "postgres: " + " ".join(f"{k}={v}" for k, v in sorted(info.items()))

    def notify(self, channel: str) -> None:
        """``NOTIFY channel`` (delivered at commit when inside a joined transaction)."""
        with self.tx() as db:
            assert isinstance(db, PgConn)
            db.conn.execute(psycopg.sql.SQL("NOTIFY {}").format(psycopg.sql.Identifier(channel)))

    def _migrate(self) -> None:
        with self.pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
                row = conn.execute("SELECT version FROM schema_version").fetchone()
                if row is None:
                    conn.execute("INSERT INTO schema_version (version) VALUES (0)")
                version = int(row[0]) if row else 0
                for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                    with conn.transaction():
                        conn.execute(dialect.ddl(script).encode())
                        conn.execute("UPDATE schema_version SET version = %s", (number,))
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


def _on_loop_thread() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
