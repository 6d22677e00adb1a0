"""``agentbridge state export FILE`` and ``agentbridge state import FILE`` (bridge/store/transfer.py
says what the file holds and how an import is checked).

Moving one box's SQLite state to a shared Postgres, for example::

    agentbridge state export /tmp/fleet.jsonl                  # the runner stopped
    AGENTBRIDGE_DATABASE_URL=postgresql://... agentbridge state import /tmp/fleet.jsonl

Both refuse while a runner holds this state dir (``runner.lock``): a live runner writes between
the tables. The store is the one ``run`` would open (``AGENTBRIDGE_DATABASE_URL``, else the
config's ``store:``, else the state dir's SQLite file); ``-`` is stdin or stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from bridge.app.runner_files import AlreadyRunning, acquire_runner_lock
from bridge.store.engine import open_store
from bridge.store.transfer import TransferError, export, import_into


@contextlib.contextmanager
def _opened(name: str, mode: str) -> Iterator[IO[str]]:
    if name == "-":
        yield sys.stdout if "w" in mode else sys.stdin
        return
    with open(name, mode, encoding="utf-8") as fh:
        yield fh


def cmd_state(
    args: argparse.Namespace, state_dir: Path, configured: Callable[[], str | None]
) -> int:
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        lock = acquire_runner_lock(state_dir)
    except AlreadyRunning as err:
        print(f"agentbridge: {err}: stop it first", file=sys.stderr)
        return 1
    try:
        store = open_store(state_dir, configured())
        try:
            if args.action == "export":
                with _opened(args.file, "w") as out:
                    counts = export(store, out)
                verb = "exported"
            else:
                with _opened(args.file, "r") as lines:
                    counts = import_into(store, lines)
                verb = "imported and checked"
        finally:
            store.close()
    except (TransferError, OSError) as err:
        print(f"agentbridge: state {args.action}: {err}", file=sys.stderr)
        return 1
    finally:
        lock.close()
    summary = ", ".join(f"{table} {n}" for table, n in counts.items() if n) or "empty"
    where = "from" if args.action == "export" else "into"
    to = sys.stderr if args.file == "-" and args.action == "export" else sys.stdout
    print(f"{verb} {sum(counts.values())} rows {where} {store.describe()} ({summary})", file=to)
    return 0
