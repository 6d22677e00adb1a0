"""Inbound cost as the fleet and its history grow (issue 25, item 2): the real ``Inbound.handle``
(access decision, sanitising, who a message or a thread reply is for, the durable queue's
dedupe and insert) over a real SQLite store holding ``--history`` rows of old queue items and
posted ledger rows (a thread reply is routed by the ledger's ``chat_ref``), for each agent count.

Only the chat transport is left out (``tests/e2e`` and ``steer_latency.py`` cover Slack end to
end): the figure is what the runner adds per message, and whether it grows with history.

Last line: per point ``a{agents}_h{rows}_p50_ms= _p99_ms= _db_mb=``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import tempfile
import time
from pathlib import Path

import yaml
from _common import emit, median, note, percentile, seed_history

from bridge.channel.inbound import Inbound
from bridge.chat.console import ConsoleBackend
from bridge.chat.protocol import Incoming, Receipt
from bridge.config.model import parse_config
from bridge.store.db import Store
from bridge.store.queue import PromptQueue

USER = "U0123456789"


def seed_queue(store: Store, slugs: list[str], rows: int, chunk: int = 50_000) -> None:
    now = time.time() - 3600
    for start in range(0, rows, chunk):
        batch = [
            (slugs[i % len(slugs)], "steer", f"old prompt {i}", '{"via": "slack"}',
             f"slack:C{i % len(slugs):010d}:{1_600_000_000 + i}.000100", "confirmed", now)
            for i in range(start, min(start + chunk, rows))
        ]  # fmt: skip
        with store.tx() as db:
            db.executemany(
                "INSERT INTO prompt_queue (slug, kind, text, source, dedupe_key, status,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                batch,
            )


async def point(root: Path, agents: int, history: int, messages: int) -> dict[str, float]:
    slugs = [f"a{i:03d}" for i in range(agents)]
    specs = [
        {"slug": s, "workdir": str(root), "channel": f"#{s}", "allowed_users": [USER]}
        for s in slugs
    ]
    config = parse_config(yaml.safe_dump({"agents": specs}), root / "agents.yaml")
    store = Store(root / "state.db")
    seed_history(store, slugs, history)
    seed_queue(store, slugs, history)
    inbound = Inbound(
        config, PromptQueue(store), ConsoleBackend(io.StringIO()), root / "inbox", channel_ids=dict
    )
    rng = random.Random(7)
    took: list[float] = []
    for i in range(messages):
        slug = rng.choice(slugs)
        reply = i % 3 == 0 and history > 0  # a reply in the thread of an old post
        thread = f"{1_700_000_000 + rng.randrange(history)}.000100" if reply else None
        msg = Incoming(f"#{slug}", USER, f"steer {i}", f"{1_800_000_000 + i}.000100",
                       thread=thread, event_id=f"ev{i}", receipt=Receipt())  # fmt: skip
        started = time.perf_counter()
        queued = await inbound.handle(msg)
        took.append((time.perf_counter() - started) * 1000)
        if queued is None:
            raise SystemExit(f"message {i} was not queued")
    size = sum(p.stat().st_size for p in root.glob("state.db*")) / 2**20
    store.close()
    return {"p50_ms": median(took), "p99_ms": percentile(took, 99), "db_mb": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="stop at 1M rows")
    args = parser.parse_args()
    histories = [10_000, 1_000_000] if args.quick else [10_000, 1_000_000, 10_000_000]
    points = [(10, 10_000), (50, 10_000), (200, 10_000), *((50, h) for h in histories[1:])]
    results: dict[str, float] = {}
    for agents, history in points:
        with tempfile.TemporaryDirectory(prefix="ab-bench-inbound-") as tmp:
            got = asyncio.run(point(Path(tmp), agents, history, args.messages))
        name = f"a{agents}_h{history}"
        note(f"{name}: " + " ".join(f"{k}={v:.2f}" for k, v in got.items()))
        results.update({f"{name}_{k}": v for k, v in got.items()})
    emit(results)


if __name__ == "__main__":
    main()
