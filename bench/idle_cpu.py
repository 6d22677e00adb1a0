"""Idle CPU: what the fleet mirror costs while every agent is quiet.

Why: agents spend most of their life idle (waiting for a prompt, a schedule, a human), and the
runner lives on the same small box as them. A watcher that polls, a rescan that does real work
per agent, or a busy event loop would burn a core's worth of battery and CPU for nothing.

The REAL :class:`bridge.mirror.fleet.Mirrors` runs in a child process (``--child``, started by this
script) over ``--agents`` Claude agents, each with its own ``CLAUDE_CONFIG_DIR`` and a
transcript seeded with the real 2.1.328 fixture. Once the child reports every transcript read
to its end, this script waits ``--settle`` seconds, then samples the child's CPU time (psutil
``cpu_times`` user + system, all threads: event loop, watchfiles' notify thread, to_thread
workers) across ``--seconds`` of wall time. The safety rescan (every 5 s) is left at the
product default, so its cost is part of the figure.

Variants (off by default): ``--shared-home`` puts every agent in one CLAUDE_CONFIG_DIR (agents
that leave it unset share ``~/.claude``), and ``--foreign-rate N`` appends N lines a second to
a transcript no agent follows under the first agent's home (the operator's own interactive
Claude session, or a subagent's side file), to see what activity the fleet does not mirror
costs it.

``--history N`` seeds N posted ledger rows first. Last line: ``cpu_pct= seconds= agents= rss_mb=
history=`` (``cpu_pct``: percent of one core; ``rss_mb``: the child's memory).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from _common import (
    CLAUDE_FIXTURE,
    RecordingBackend,
    add_fixtures_arg,
    build_claude_fleet,
    caught_up,
    dumps,
    emit,
    load_claude,
    note,
    open_claude_fleet,
    seed_history,
    wait_for,
)

from bridge.mirror.fleet import Mirrors


async def child(root: Path) -> None:
    """The measured process: the fleet's mirrors and nothing else, until told to stop."""
    fleet = open_claude_fleet(root)
    backend = RecordingBackend(keep=False)
    mirrors = Mirrors(fleet.store, backend, environ=fleet.environ)
    mirrors.sync(fleet.config)
    stop = asyncio.Event()
    runner = asyncio.create_task(mirrors.run(stop), name="mirrors")
    await wait_for(lambda: caught_up(fleet, mirrors), 120, "the initial catch-up")
    ready = backend.count
    print(f"ready {ready}", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # the parent says when the sample is over
    stop.set()
    await runner
    fleet.store.close()
    print(f"posts_while_idle {backend.count - ready}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=50, help="agents (default: %(default)s)")
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="idle seconds sampled (%(default)s)"
    )
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds after catch-up before (%(default)s)"
    )
    parser.add_argument(
        "--shared-home", action="store_true", help="one CLAUDE_CONFIG_DIR for all agents"
    )
    parser.add_argument(
        "--foreign-rate",
        type=float,
        default=0.0,
        help="lines/s appended to a transcript no agent follows (default: %(default)s)",
    )
    parser.add_argument(
        "--history", type=int, default=0, help="posted ledger rows seeded first (%(default)s)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    add_fixtures_arg(parser)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args.root))
        return

    seed = args.fixtures / CLAUDE_FIXTURE
    if not seed.exists():
        raise SystemExit(f"fixture missing: {seed} (pass --fixtures DIR)")
    with tempfile.TemporaryDirectory(prefix="ab-bench-idle-") as tmp:
        root = Path(tmp)
        fleet = build_claude_fleet(
            root, args.agents, seed.read_bytes(), shared_home=args.shared_home
        )
        if args.history:
            seed_history(fleet.store, [a.slug for a in fleet.agents], args.history)
        fleet.store.close()
        foreign = (
            fleet.agents[0].config_dir
            / "projects"
            / "-home-operator-project"
            / "0be7a70e-0000-4000-8000-000000000001.jsonl"
        )
        foreign.parent.mkdir(parents=True, exist_ok=True)
        foreign.touch()
        foreign_line = (dumps(load_claude(args.fixtures).text) + "\n").encode()
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", "--root", str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            started = time.monotonic()
            line = proc.stdout.readline()
            if not line.startswith("ready"):
                raise SystemExit(f"child failed before catching up (said {line!r})")
            note(
                f"child caught up {args.agents} transcripts ({line.split()[1]} posts) "
                f"in {time.monotonic() - started:.1f}s; sampling {args.seconds:g}s of idle"
            )
            time.sleep(args.settle)
            ps = psutil.Process(proc.pid)
            cpu0, wall0 = ps.cpu_times(), time.monotonic()
            if args.foreign_rate > 0:
                fd = os.open(foreign, os.O_WRONLY | os.O_APPEND)
                for i in range(int(args.seconds * args.foreign_rate)):
                    time.sleep(max(0.0, wall0 + i / args.foreign_rate - time.monotonic()))
                    os.write(fd, foreign_line)
                os.close(fd)
            time.sleep(max(0.0, wall0 + args.seconds - time.monotonic()))
            cpu1, wall1 = ps.cpu_times(), time.monotonic()
            threads = ps.num_threads()
            rss = ps.memory_info().rss / 2**20
            proc.stdin.write("stop\n")
            proc.stdin.flush()
            tail = proc.stdout.read()
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
    user = cpu1.user - cpu0.user
    system = cpu1.system - cpu0.system
    wall = wall1 - wall0
    note(
        f"user {user:.3f}s, system {system:.3f}s over {wall:.1f}s; "
        f"{threads} threads; child: {tail.strip()}"
    )
    emit(
        {
            "cpu_pct": 100 * (user + system) / wall,
            "seconds": round(wall, 1),
            "agents": args.agents,
            "rss_mb": rss,
            "history": args.history,
        }
    )


if __name__ == "__main__":
    main()
