"""SQLite-flavoured SQL -> PostgreSQL, so one schema and one set of queries serve both engines.

The schema (:data:`bridge.store.db.MIGRATIONS`) and the ~70 queries across ``bridge/`` are
written for SQLite, in a portable subset. This module rewrites them for Postgres, mechanically:

- ``?`` placeholders -> ``%s`` (and a literal ``%`` -> ``%%``), outside string literals;
- ``INSERT OR IGNORE`` -> ``INSERT ... ON CONFLICT DO NOTHING``; ``INSERT OR REPLACE`` ->
  ``ON CONFLICT (primary key) DO UPDATE`` of every inserted column (keys from the schema);
- an ``INSERT`` into a table whose ``id`` is ``INTEGER PRIMARY KEY AUTOINCREMENT`` gains
  ``RETURNING id``, which is how the Postgres cursor offers ``lastrowid``;
- in DDL: ``INTEGER PRIMARY KEY AUTOINCREMENT`` -> an identity column, ``INTEGER`` ->
  ``BIGINT`` (inodes and byte offsets pass 2^31), ``REAL`` -> ``DOUBLE PRECISION`` (epoch
  seconds need more than float4's 7 digits);
- identifiers that Postgres reserves but SQLite does not (``offset``) are quoted.

What a new migration or query must avoid (there is no rewrite for it): SQLite-only functions
(``strftime``, ``julianday``, ``ifnull``: use ``COALESCE``), ``PRAGMA``, ``rowid``, and
``ALTER TABLE`` beyond ``ADD COLUMN``. The unit tests run every migration through this module
and the Postgres tier runs them for real.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

#: Words Postgres reserves that this schema uses as plain column names (lowercase = a column;
#: the SQL keyword is always written in capitals in this code base).
_RESERVED_COLUMNS = ("offset", "user")

_QUOTED = re.compile(r"'(?:[^']|'')*'")
_CREATE = re.compile(r"CREATE TABLE (\w+)\s*\((.*?)\n\s*\);", re.S | re.I)
_ALTER = re.compile(r"ALTER TABLE (\w+) ADD COLUMN (\w+)", re.I)
_UPSERT = re.compile(r"\bDO\s+UPDATE\s+SET\b", re.I)
_INSERT = re.compile(
    r"^\s*INSERT\s+(?:OR\s+(IGNORE|REPLACE)\s+)?INTO\s+(\w+)\s*\(([^)]*)\)", re.I | re.S
)


class Schema:
    """What the rewrite needs to know about the tables: primary keys and identity tables."""

    def __init__(self, migrations: Iterable[str]) -> None:
        self.keys: dict[str, tuple[str, ...]] = {}
        self.identity: set[str] = set()
        self.columns: dict[str, set[str]] = {}
        for script in migrations:
            for match in _ALTER.finditer(script):
                self.columns.setdefault(match.group(1).lower(), set()).add(match.group(2).lower())
            for match in _CREATE.finditer(script):
                table, body = match.group(1).lower(), match.group(2)
                self.columns.setdefault(table, set()).update(
                    m.group(1).lower()
                    for m in re.finditer(r"^\s*(\w+)\s+[A-Z]", body, re.M)
                    if m.group(1).upper() not in ("PRIMARY", "UNIQUE", "FOREIGN", "CHECK")
                )
                if re.search(r"\bid\s+INTEGER\s+PRIMARY\s+KEY\s+AUTOINCREMENT", body, re.I):
                    self.identity.add(table)
                    self.keys[table] = ("id",)
                    continue
                composite = re.search(r"PRIMARY\s+KEY\s*\(([^)]*)\)", body, re.I)
                if composite:
                    self.keys[table] = tuple(c.strip() for c in composite.group(1).split(","))
                    continue
                single = re.search(r"^\s*(\w+)\s+\w+[^,\n]*PRIMARY\s+KEY", body, re.I | re.M)
                if single:
                    self.keys[table] = (single.group(1),)


def _outside_strings(sql: str, rewrite: Callable[[str], str]) -> str:
    """Apply ``rewrite`` to the parts of ``sql`` outside single-quoted literals."""
    out: list[str] = []
    last = 0
    for match in _QUOTED.finditer(sql):
        out.append(rewrite(sql[last : match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(rewrite(sql[last:]))
    return "".join(out)


def _quote_reserved(part: str) -> str:
    for word in _RESERVED_COLUMNS:
        part = re.sub(rf'(?<!["\w]){word}(?!["\w])', f'"{word}"', part)
    return part


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _qualify_upsert(sql: str, table: str, schema: Schema) -> str:
    """In ``ON CONFLICT ... DO UPDATE SET``, a bare column is ambiguous on Postgres (the row,
    or ``excluded``); SQLite means the existing row, so qualify it with the table's name."""
    match = _UPSERT.search(sql)
    columns = schema.columns.get(table.lower())
    if not match or not columns:
        return sql
    bare = re.compile(rf"(?<![\w.\"])({'|'.join(sorted(columns))})(?![\w(\"])")

    def qualify(part: str) -> str:
        return _outside_strings(part, lambda text: bare.sub(rf"{table}.\1", text))

    head, tail = sql[: match.end()], sql[match.end() :]
    where = re.search(r"\bWHERE\b", tail, re.I)
    sets, cond = (tail[: where.start()], tail[where.start() :]) if where else (tail, "")
    items = []
    for item in _split_top(sets):
        target, eq, expr = item.partition("=")
        items.append(target + eq + qualify(expr) if eq else item)
    return head + ",".join(items) + qualify(cond)


def ddl(script: str) -> str:
    """One migration script, for Postgres."""

    def rewrite(part: str) -> str:
        part = re.sub(
            r"\bINTEGER\s+PRIMARY\s+KEY\s+AUTOINCREMENT\b",
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            part,
            flags=re.I,
        )
        part = re.sub(r"\bINTEGER\b", "BIGINT", part)
        part = re.sub(r"\bREAL\b", "DOUBLE PRECISION", part)
        return _quote_reserved(part)

    return _outside_strings(script, rewrite)


def query(sql: str, schema: Schema, *, with_params: bool = True) -> tuple[str, bool]:
    """One statement, for Postgres: (the SQL, whether it returns the new row's ``id``)."""
    returning = False
    match = _INSERT.match(sql)
    if match:
        mode, table, columns = (match.group(1) or "").upper(), match.group(2), match.group(3)
        sql = sql[: match.start()] + f"INSERT INTO {table} ({columns})" + sql[match.end() :]
        body = sql.rstrip().rstrip(";")
        if mode == "IGNORE":
            body += " ON CONFLICT DO NOTHING"
        elif mode == "REPLACE":
            keys = schema.keys.get(table.lower(), ())
            cols = [c.strip() for c in columns.split(",") if c.strip() not in keys]
            sets = ", ".join(f"{c} = excluded.{c}" for c in cols)
            action = f"DO UPDATE SET {sets}" if sets else "DO NOTHING"
            body += f" ON CONFLICT ({', '.join(keys)}) {action}"
        if table.lower() in schema.identity and "RETURNING" not in body.upper():
            body += " RETURNING id"
            returning = True
        sql = body
        sql = _qualify_upsert(sql, table, schema)

    if with_params:
        sql = sql.replace("%", "%%")  # psycopg reads % everywhere, literals included

    def rewrite(part: str) -> str:
        return _quote_reserved(part.replace("?", "%s") if with_params else part)

    return _outside_strings(sql, rewrite), returning
