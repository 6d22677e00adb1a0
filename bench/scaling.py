"""How the mirror's costs grow with the fleet and with its history (issue 25, item 2).

Runs ``mirror_latency.py`` and ``idle_cpu.py`` (the real ``Mirrors`` over real-shaped Claude
transcripts, a real SQLite ledger) at each point of two lines through the space:

- agents 10 / 50 / 200, with 10k rows of history: the goal is *linear in agents* (idle CPU and
  memory per agent about constant; latency flat while the box is not saturated);
- history 10k / 1M / 10M posted ledger rows, with 50 agents: the goal is *flat in history*
  (latency, start-up settle, idle CPU and memory about the same at 10M as at 10k; only the
  database grows, and retention bounds that: bridge/store/retention.py).

Each point runs in its own processes. Last line: one ``key=value`` per figure and point, e.g.
``a10_p50_ms= … h10000000_db_mb=``; a table on stderr. ``--quick`` stops at 1M rows and 50
agents (what CI-sized boxes finish in a few minutes).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from _common import emit, note

HERE = Path(__file__).resolve().parent


def figures(script: str, *args: str) -> dict[str, float]:
    out = (
        subprocess.run(
            [sys.executable, str(HERE / script), *args],
            capture_output=True,
            text=True,
            check=True,
            cwd=HERE,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    return {k: float(v) for k, v in (pair.split("=", 1) for pair in out.split())}


def point(agents: int, history: int, lines: int, idle_s: float) -> dict[str, float]:
    latency = figures(
        "mirror_latency.py",
        f"--agents={agents}",
        f"--history={history}",
        f"--lines={lines}",
        "--rate=20",
        "--wait=120",
    )
    idle = figures(
        "idle_cpu.py", f"--agents={agents}", f"--history={history}", f"--seconds={idle_s}"
    )
    return {
        "p50_ms": latency["p50_ms"],
        "p99_ms": latency["p99_ms"],
        "lost": latency["lost"],
        "settle_s": latency["settle_s"],
        "db_mb": latency["db_mb"],
        "idle_cpu_pct": idle["cpu_pct"],
        "idle_rss_mb": idle["rss_mb"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="stop at 1M rows and 50 agents")
    parser.add_argument("--lines", type=int, default=300, help="timed lines per point")
    parser.add_argument("--idle", type=float, default=15.0, help="idle seconds sampled")
    args = parser.parse_args()
    agents = [10, 50] if args.quick else [10, 50, 200]
    histories = [10_000, 1_000_000] if args.quick else [10_000, 1_000_000, 10_000_000]
    results: dict[str, float] = {}
    rows: list[str] = []
    for name, n, h in [
        *((f"a{a}", a, 10_000) for a in agents),
        *((f"h{h}", 50, h) for h in histories),
    ]:
        note(f"{name}: {n} agents, {h} history rows ...")
        got = point(n, h, args.lines, args.idle)
        rows.append(f"{name:>10} " + " ".join(f"{k}={v:g}" for k, v in got.items()))
        note(rows[-1])
        results.update({f"{name}_{k}": v for k, v in got.items()})
    note("\n".join(rows))
    emit(results)


if __name__ == "__main__":
    main()
