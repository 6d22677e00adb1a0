"""Mirror latency: how long after an agent writes a transcript line its chat post goes out.

Why: the bridge is only useful if chat keeps up with the agents. This runs the REAL fleet
mirror (:class:`bridge.mirror.fleet.Mirrors`: one watchfiles/inotify watcher, per-agent workers,
the tailer, the parser, the renderer and the SQLite ledger) over ``--agents`` Claude agents,
each with its own ``CLAUDE_CONFIG_DIR`` and a transcript seeded with the real 2.1.328 fixture.
Once every agent is caught up, a separate writer process (as the agent CLIs are) appends
real-shaped assistant text lines to random agents' transcripts at a steady ``--rate``, noting
``time.monotonic()`` right after each ``write``; the recording backend notes the time each
``post()`` is called. Latency = post time - append time, so it includes the whole wake-up
path (inotify -> watchfiles debounce -> dispatch -> worker -> read -> parse -> ledger -> post).

With ``--history N`` the ledger first gets N posted rows (months of mirroring), to see that
the figures do not grow with it; ``settle_s`` is the start-up catch-up, ``rss_mb`` the
process's memory, ``db_mb`` the database on disk.

Last line: ``p50_ms= p99_ms= max_ms= agents= lines= lost= dup= settle_s= rss_mb= db_mb=
history=`` (``lost`` must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import re
import tempfile
import time
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import psutil
from _common import (
    CLAUDE_FIXTURE,
    RecordingBackend,
    add_fixtures_arg,
    assistant_text_line,
    build_claude_fleet,
    caught_up,
    emit,
    load_claude,
    median,
    note,
    percentile,
    seed_history,
    store_mb,
    wait_for,
)
from catchup import build_transcript

from bridge.mirror.fleet import Mirrors

_SEQ = re.compile(r"^msg_bench_(\d+):text:")


def line_text(seq: int) -> str:
    """Assistant prose of a realistic length and markup, carrying the sequence number."""
    return (
        f"Step {seq}: ran `pytest -q tests/unit` and **42 passed** in 1.8 s. "
        "The failing case was the offset check in `bridge/tail.py`; I fixed the "
        "off-by-one and will now re-run the integration suite before touching the ledger."
    )


def writer(
    paths: list[str],
    plan_queue: Queue[Any],
    result_queue: Queue[Any],
    rate: float,
    backlog: str | None,
) -> None:
    """The agents' side, in its own process: append each planned line at a steady rate.

    Each line goes out in ONE ``write`` on an O_APPEND descriptor (as the CLIs append whole
    lines), and the time is taken right after it returns. With a ``backlog`` file, its content
    is first appended to the last agent's transcript (which gets no timed lines), so the timed
    lines race that agent's catch-up.
    """
    fds = [os.open(p, os.O_WRONLY | os.O_APPEND) for p in paths]
    result_queue.put("ready")
    plan: list[tuple[int, int, bytes]] = plan_queue.get()
    appended: list[tuple[int, float]] = []
    if backlog is not None:
        with open(backlog, "rb") as fh:
            while chunk := fh.read(1 << 20):
                os.write(fds[-1], chunk)
    start = time.monotonic()
    for i, (seq, agent, data) in enumerate(plan):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        os.write(fds[agent], data)
        appended.append((seq, time.monotonic()))
    for fd in fds:
        os.close(fd)
    result_queue.put(appended)


async def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    claude = load_claude(args.fixtures)
    seed = args.fixtures / CLAUDE_FIXTURE
    fleet = build_claude_fleet(root, args.agents, seed.read_bytes())
    if args.history:
        started = time.monotonic()
        seed_history(fleet.store, [a.slug for a in fleet.agents], args.history)
        note(f"seeded {args.history} ledger rows in {time.monotonic() - started:.1f}s")
    backlog: Path | None = None
    if args.backlog_mb > 0:
        backlog = root / "backlog.jsonl"
        size, _ = build_transcript(backlog, claude, int(args.backlog_mb * 2**20), 6)
        note(f"the last agent will get a {size / 2**20:.0f} MB burst as the timed lines start")

    # The writer process starts (and pays its interpreter start-up) before anything is timed.
    mp = multiprocessing.get_context("spawn")
    plan_queue: Queue[Any] = mp.Queue()
    result_queue: Queue[Any] = mp.Queue()
    proc = mp.Process(
        target=writer,
        args=(
            [str(a.transcript) for a in fleet.agents],
            plan_queue,
            result_queue,
            args.rate,
            str(backlog) if backlog else None,
        ),
        daemon=True,
    )
    proc.start()

    backend = RecordingBackend()
    mirrors = Mirrors(fleet.store, backend, environ=fleet.environ)
    mirrors.sync(fleet.config)
    stop = asyncio.Event()
    runner = asyncio.create_task(mirrors.run(stop), name="mirrors")
    try:
        took = await wait_for(lambda: caught_up(fleet, mirrors), 600, "the initial catch-up")
        note(f"caught up {args.agents} seeded transcripts in {took:.1f}s ({backend.count} posts)")
        ready = await asyncio.to_thread(result_queue.get, True, 60)
        assert ready == "ready"
        await asyncio.sleep(args.settle)  # let the watcher and workers go idle first

        rng = random.Random(args.seed)
        plan: list[tuple[int, int, bytes]] = []
        for seq in range(args.lines):
            agent = rng.randrange(args.agents - (1 if backlog else 0))
            line = assistant_text_line(
                claude.text,
                f"msg_bench_{seq:06d}",
                f"b3ac0000-0000-4000-8000-{seq:012x}",
                line_text(seq),
            )
            plan.append((seq, agent, (line + "\n").encode()))
        first_post = len(backend.posts)
        note(f"appending {args.lines} lines at {args.rate:g}/s to random agents...")
        plan_queue.put(plan)
        appended: list[tuple[int, float]] = await asyncio.to_thread(
            result_queue.get, True, args.lines / args.rate + 120
        )
        appended_at = dict(appended)

        def seen() -> set[int]:
            out: set[int] = set()
            for _, _, event_id, _ in backend.posts[first_post:]:
                m = _SEQ.match(event_id)
                if m:
                    out.add(int(m.group(1)))
            return out

        try:
            await wait_for(lambda: len(seen()) >= len(appended_at), args.wait, "the last posts")
        except SystemExit as exc:
            note(str(exc))
    finally:
        stop.set()
        await runner
        proc.join(10)
        fleet.store.close()

    posted: dict[int, float] = {}
    dup = 0
    for t, _, event_id, _ in backend.posts[first_post:]:
        m = _SEQ.match(event_id)
        if not m:
            continue
        seq = int(m.group(1))
        if seq in posted:
            dup += 1
        else:
            posted[seq] = t
    latencies = [(posted[s] - t) * 1000 for s, t in appended_at.items() if s in posted]
    lost = len(appended_at) - len(latencies)
    note(
        f"mean {sum(latencies) / max(1, len(latencies)):.1f} ms, "
        f"min {min(latencies, default=float('nan')):.1f} ms, "
        f"p90 {percentile(latencies, 90):.1f} ms"
    )
    return {
        "p50_ms": median(latencies),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies, default=float("nan")),
        "agents": args.agents - (1 if backlog else 0),
        "lines": len(appended_at),
        "lost": lost,
        "dup": dup,
        "settle_s": took,
        "rss_mb": psutil.Process().memory_info().rss / 2**20,
        "db_mb": store_mb(root),
        "history": args.history,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=50, help="agents (default: %(default)s)")
    parser.add_argument("--lines", type=int, default=500, help="lines to append (%(default)s)")
    parser.add_argument(
        "--rate", type=float, default=20.0, help="appended lines per second, total (%(default)s)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (%(default)s)")
    parser.add_argument(
        "--history", type=int, default=0, help="posted ledger rows seeded first (%(default)s)"
    )
    parser.add_argument(
        "--settle", type=float, default=1.0, help="idle seconds before appending (%(default)s)"
    )
    parser.add_argument(
        "--wait", type=float, default=30.0, help="max seconds to wait for the last post"
    )
    parser.add_argument(
        "--backlog-mb",
        type=float,
        default=0.0,
        help="also dump this many MB of real-shaped backlog on one more agent as the timed "
        "appends start, to see whether one agent's catch-up delays the others (default: off)",
    )
    add_fixtures_arg(parser)
    args = parser.parse_args()
    if args.backlog_mb > 0:
        args.agents += 1  # the backlog agent comes on top of the timed ones
    with tempfile.TemporaryDirectory(prefix="ab-bench-latency-") as tmp:
        figures = asyncio.run(run(args, Path(tmp)))
    emit(figures)


if __name__ == "__main__":
    main()
