"""``agentbridge move SLUG --to HOST``: ask for an agent to move to another host's runner.

The command only records the request (:meth:`bridge.store.moves.MoveBook.request`); the runners
do the handover (``bridge/cluster/moves.py``). It needs the shared store the runners use
(``AGENTBRIDGE_DATABASE_URL`` or the config's ``store:``) and can run on any host. With
``--wait`` it returns once the new host holds the agent (or after the timeout, exit 1).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bridge.store.engine import open_store
from bridge.store.moves import MoveBook, MoveError


def cmd_move(
    args: argparse.Namespace, state_dir: Path, configured: Callable[[], str | None]
) -> int:
    store = open_store(state_dir, configured())
    try:
        book = MoveBook(store)
        try:
            was = book.request(args.slug, args.to)
        except MoveError as err:
            print(f"agentbridge move: {err}", file=sys.stderr)
            return 2
        print(f"{args.slug}: moving from {was.host} to {args.to} (epoch {was.epoch})")
        if not args.wait:
            return 0
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline:
            row = book.placements().get(args.slug)
            if row is not None and row.host == args.to and row.moving_to is None:
                print(f"{args.slug}: now on {row.host} (epoch {row.epoch})")
                return 0
            time.sleep(0.5)
        print(f"agentbridge move: {args.slug} not handed over yet; it will be", file=sys.stderr)
        return 1
    finally:
        store.close()
