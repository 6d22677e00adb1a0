"""``agentbridge state export`` / ``import``: the whole state database as one JSON-lines file,
so a fleet moves from one box's SQLite to a shared Postgres (or back, or to a new box).

The file: a header (format, schema version, engine, time), then per table a ``columns`` line and
one line per row, then a ``digest`` line per table: a SHA-256 of the table's rows in primary-key
order, canonical JSON. An import writes everything in one transaction into a store that holds
no state yet (a half-filled target would mix two fleets' ledgers), then computes the same
digests from what the target now holds and fails (rolled back) unless every table matches: the
ledger, the transcript offsets, the queue and its dedupe keys, the routed events, everything
exactly-once depends on, arrive whole or not at all.

The runner must be stopped for both (the CLI checks the state dir's runner lock): a live runner
would write between the export's tables.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

from bridge.errors import AgentbridgeError
from bridge.store.db import Conn, Store
from bridge.store.dialect import Schema
from bridge.store.schema import MIGRATIONS

FORMAT = "agentbridge-state/1"
BATCH = 1000
"""Rows per ``executemany`` on import."""

#: Tables whose rows mean the store already holds a fleet's state.
_STATE_TABLES = ("agents", "ledger", "transcripts", "prompt_queue")


class TransferError(AgentbridgeError):
    """An export that cannot be imported here, or an import that did not arrive whole."""


def tables() -> dict[str, tuple[str, ...]]:
    """Every table of :data:`MIGRATIONS` with its columns (sorted)."""
    return {t: tuple(sorted(cols)) for t, cols in sorted(Schema(MIGRATIONS).columns.items())}


def _select(table: str, columns: tuple[str, ...]) -> str:
    order = " ORDER BY id" if "id" in columns else ""  # a stable file; the digest needs none
    return f"SELECT {', '.join(columns)} FROM {table}{order}"


class Digest:
    """A multiset hash of rows (the sum of each canonical row's SHA-256, mod 2**256): the same
    whatever order the rows come in, so SQLite's byte order and a Postgres collation agree."""

    def __init__(self) -> None:
        self.total = 0
        self.rows = 0

    def add(self, line: str) -> None:
        self.total = (self.total + int(hashlib.sha256(line.encode()).hexdigest(), 16)) % 2**256
        self.rows += 1

    def hex(self) -> str:
        return f"{self.total:064x}"


def _line(row: Any, width: int) -> str:
    return json.dumps([row[i] for i in range(width)], separators=(",", ":"))


def export(store: Store, out: IO[str]) -> dict[str, int]:
    """Write ``store`` to ``out``; returns the row count per table."""
    header = {
        "format": FORMAT,
        "schema_version": store.schema_version(),
        "engine": getattr(store, "engine", "sqlite"),
        "exported_at": time.time(),
    }
    out.write(json.dumps(header) + "\n")
    counts: dict[str, int] = {}
    for table, columns in tables().items():
        out.write(json.dumps({"table": table, "columns": list(columns)}) + "\n")
        digest = Digest()
        for row in store.query(_select(table, columns)):
            line = _line(row, len(columns))
            digest.add(line)
            out.write(f'{{"t":{json.dumps(table)},"r":{line}}}\n')
        out.write(json.dumps({"digest": table, "sha256": digest.hex(), "rows": digest.rows}))
        out.write("\n")
        counts[table] = digest.rows
    return counts


def _records(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError as err:
            raise TransferError(f"line {number}: not JSON ({err})") from None
        if not isinstance(record, dict):
            raise TransferError(f"line {number}: not a JSON object")
        yield record


def _empty(store: Store) -> bool:
    return all(not store.query(f"SELECT 1 FROM {t} LIMIT 1") for t in _STATE_TABLES)


def import_into(store: Store, lines: Iterable[str]) -> dict[str, int]:
    """Load an export into ``store`` (which must hold no state yet) and check it arrived
    whole; returns the row count per table. Raises :class:`TransferError`, changing nothing,
    on any mismatch."""
    records = _records(lines)
    header = next(records, None)
    if header is None or header.get("format") != FORMAT:
        raise TransferError(f"not an agentbridge state export (expected format {FORMAT})")
    version = int(header.get("schema_version", 0))
    if version > len(MIGRATIONS):
        raise TransferError(
            f"the export has schema version {version}; this agentbridge knows"
            f" {len(MIGRATIONS)}: upgrade agentbridge here first"
        )
    if not _empty(store):
        raise TransferError("the target already holds a fleet's state; import into an empty one")
    try:
        return _load(store, records)
    except TransferError:
        raise
    except Exception as err:  # a row the target refuses (a key twice, a bad value)
        raise TransferError(f"the target refused a row ({err}); nothing was imported") from err


def _load(store: Store, records: Iterator[dict[str, Any]]) -> dict[str, int]:
    known = tables()
    sections: dict[str, tuple[str, ...]] = {}  # each table's columns, as exported
    expected: dict[str, tuple[str, int]] = {}
    with store.tx() as db:
        table, batch = "", list[list[Any]]()
        for record in records:
            if "table" in record:
                _flush(db, table, sections.get(table, ()), batch)
                table = str(record["table"])
                columns = tuple(str(c) for c in record["columns"])
                if table not in known or not set(columns) <= set(known[table]):
                    raise TransferError(f"table {table!r}: not in this schema as exported")
                sections[table] = columns
            elif "t" in record:
                if record["t"] != table:
                    raise TransferError(f"a row of {record['t']!r} outside its table's section")
                batch.append(list(record["r"]))
                if len(batch) >= BATCH:
                    _flush(db, table, sections[table], batch)
            elif "digest" in record:
                _flush(db, table, sections.get(table, ()), batch)
                expected[str(record["digest"])] = (str(record["sha256"]), int(record["rows"]))
        _flush(db, table, sections.get(table, ()), batch)
        if not sections or set(expected) != set(sections):
            raise TransferError("the export is incomplete (a table without its digest)")
        store.after_import(db, [t for t in sections if known[t] and "id" in known[t]])
        return _check(db, sections, expected)


def _flush(db: Conn, table: str, columns: tuple[str, ...], batch: list[list[Any]]) -> None:
    if not batch:
        return
    marks = ", ".join("?" * len(columns))
    db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", batch)
    batch.clear()


def _check(
    db: Conn, sections: dict[str, tuple[str, ...]], expected: dict[str, tuple[str, int]]
) -> dict[str, int]:
    """The target's digests over the exported columns, recomputed inside the import's
    transaction: any mismatch raises, and the whole import is rolled back."""
    counts: dict[str, int] = {}
    for table, columns in sections.items():
        sha, rows = expected[table]
        digest = Digest()
        for row in db.execute(_select(table, columns)):
            digest.add(_line(row, len(columns)))
        if (digest.hex(), digest.rows) != (sha, rows):
            raise TransferError(
                f"table {table}: {digest.rows} of {rows} rows arrived, or their content"
                " differs; nothing was imported"
            )
        counts[table] = digest.rows
    return counts
