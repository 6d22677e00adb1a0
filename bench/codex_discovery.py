"""Codex rollout discovery: how long finding a fresh agent's rollout takes in a busy CODEX_HOME.

Why: Codex mints its own session id and creates its rollout only at the first prompt, so until
the session is known the runner looks for it (the reconciler once a second per undiscovered
agent, the mirror on every refresh). ``runtimes.codex.scan_rollouts`` bounds that work: only
today's / yesterday's / tomorrow's ``sessions/YYYY/MM/DD`` dirs are listed, only files modified
since the launch are opened, and only a 64 KB prefix of line 1 is read. This checks the bound
holds on a long-lived home.

The home gets ``--files`` rollouts (default 10,000) over ``--days`` day dirs: most in older
days, ``--today`` / ``--yesterday`` in the two newest (all modified before the launch), with
real-shaped ``session_meta`` first lines (the 0.169.0 fixture's, instructions cut to
``--instructions-kb``) naming a pool of cwds that includes the agent's own (its older
sessions). After the launch, ``--concurrent`` other agents' rollouts appear (full-size real
first line) and, last (worst case: every fresh file is read first), the agent's own.
``scan_rollouts`` and ``CodexRuntime().find_transcript(ctx, None, launched_at)`` are then timed
over ``--runs`` warm-cache runs.

Last line: ``ms= p99_ms= files= find_ms= miss_ms= known_ms= opened=`` (``ms``: median
``scan_rollouts``; ``find_ms``: the same through ``find_transcript``; ``miss_ms``: a scan for an
agent that has no rollout yet, i.e. was not prompted; ``known_ms``: ``rollout_for`` a known
session id without Codex's state db, the glob fallback; ``opened``: files newer than the launch,
each of which a scan opens).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import CODEX_FIXTURE_DIR, add_fixtures_arg, emit, median, note, percentile

from runtimes import LaunchContext
from runtimes.codex import CodexRuntime, scan_rollouts


def uuid7(at: datetime, rng: random.Random) -> str:
    """A UUIDv7 as Codex mints them: 48-bit ms timestamp, version 7, random rest."""
    ms = int(at.timestamp() * 1000)
    rand = rng.getrandbits(74)
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & (2**62 - 1))
    return str(uuid.UUID(int=value))


class RolloutFactory:
    """Writes rollouts whose first line is the real fixture's ``session_meta``, re-addressed."""

    def __init__(self, fixtures: Path, instructions_kb: float) -> None:
        path = next((fixtures / CODEX_FIXTURE_DIR).glob("rollout-*.jsonl"), None)
        if path is None:
            raise SystemExit(f"fixture missing: {fixtures / CODEX_FIXTURE_DIR} (--fixtures DIR)")
        raw = path.read_text(encoding="utf-8").splitlines()
        self.meta: dict[str, Any] = json.loads(raw[0])
        self.rest = "\n".join(raw[1:]) + "\n"
        text = self.meta["payload"]["base_instructions"]["text"]
        self.full_text: str = text
        self.short_text: str = text[: int(instructions_kb * 1024)]

    def write(
        self,
        sessions: Path,
        at: datetime,
        cwd: str,
        rng: random.Random,
        *,
        full: bool = False,
    ) -> tuple[Path, str]:
        """A rollout created at ``at`` (local time in its name and dir, mtime ``at``)."""
        local = at.astimezone()
        sid = uuid7(at, rng)
        meta = json.loads(json.dumps(self.meta))
        payload = meta["payload"]
        payload.update(
            id=sid,
            session_id=sid,
            cwd=cwd,
            runtime_workspace_roots=[cwd],
            timestamp=at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        )
        payload["base_instructions"]["text"] = self.full_text if full else self.short_text
        meta["timestamp"] = payload["timestamp"]
        day = sessions / f"{local:%Y}" / f"{local:%m}" / f"{local:%d}"
        day.mkdir(parents=True, exist_ok=True)
        path = day / f"rollout-{local:%Y-%m-%dT%H-%M-%S}-{sid}.jsonl"
        body = json.dumps(meta, separators=(",", ":")) + "\n"
        # Fresh rollouts carry the whole real session; historic ones only their first line
        # (all the scan ever reads of them is the directory entry and the mtime).
        path.write_text(body + (self.rest if full else ""), encoding="utf-8")
        stamp = at.timestamp()
        os.utime(path, (stamp, stamp))
        return path, sid


def build_home(args: argparse.Namespace, root: Path) -> tuple[Path, Path, datetime, Path, str]:
    """(CODEX_HOME, workdir, launched_at, target rollout, its session id)."""
    rng = random.Random(args.seed)
    factory = RolloutFactory(args.fixtures, args.instructions_kb)
    home = root / "codex-home"
    sessions = home / "sessions"
    workdir = (root / "work" / "agent").resolve()
    workdir.mkdir(parents=True)
    cwds = [str(workdir)] + [f"/srv/agents/project-{i:02d}" for i in range(args.cwds - 1)]

    launched_at = datetime.now(UTC) - timedelta(seconds=args.launched_ago)
    local_launch = launched_at.astimezone()
    midnight = local_launch.replace(hour=0, minute=0, second=0, microsecond=0)
    # Historic files: --today before the launch today, --yesterday yesterday, rest older.
    historic = args.files - args.concurrent - 1
    today = min(args.today, historic)
    yesterday = min(args.yesterday, historic - today)
    older = historic - today - yesterday
    stamps: list[datetime] = []
    today_span = max(1.0, (local_launch - midnight).total_seconds() - 10)
    stamps += [midnight + timedelta(seconds=rng.uniform(0, today_span)) for _ in range(today)]
    stamps += [midnight - timedelta(seconds=rng.uniform(1, 86_399)) for _ in range(yesterday)]
    for _ in range(older):
        days = rng.randint(2, max(2, args.days - 1))
        stamps.append(midnight - timedelta(days=days - 1, seconds=rng.uniform(1, 86_399)))
    for at in stamps:
        factory.write(sessions, at.astimezone(UTC), rng.choice(cwds), rng)
    # After the launch: the other agents' fresh rollouts, then (last) ours.
    step = args.launched_ago / (args.concurrent + 2)
    for i in range(args.concurrent):
        at = launched_at + timedelta(seconds=step * (i + 1))
        factory.write(sessions, at, f"/srv/agents/fleet-{i:03d}", rng, full=True)
    target_at = launched_at + timedelta(seconds=step * (args.concurrent + 1))
    target, sid = factory.write(sessions, target_at, str(workdir), rng, full=True)
    return home, workdir, launched_at, target, sid


def timed(fn: Callable[[], Any], runs: int, warmup: int = 3) -> tuple[list[float], Any]:
    """Milliseconds of each of ``runs`` calls after ``warmup`` untimed ones (warm caches)."""
    result: Any = None
    for _ in range(warmup):
        result = fn()
    times: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000, help="rollouts in all (%(default)s)")
    parser.add_argument("--days", type=int, default=60, help="days of history (%(default)s)")
    parser.add_argument("--today", type=int, default=300, help="historic today (%(default)s)")
    parser.add_argument("--yesterday", type=int, default=200, help="yesterday (%(default)s)")
    parser.add_argument(
        "--concurrent",
        type=int,
        default=49,
        help="other agents' rollouts created after the launch (%(default)s)",
    )
    parser.add_argument("--cwds", type=int, default=50, help="distinct cwds (%(default)s)")
    parser.add_argument(
        "--instructions-kb",
        type=float,
        default=4.0,
        help="instructions kept in historic first lines, KB (%(default)s)",
    )
    parser.add_argument(
        "--launched-ago", type=float, default=120.0, help="launch, seconds ago (%(default)s)"
    )
    parser.add_argument("--runs", type=int, default=200, help="timed scans (%(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (%(default)s)")
    add_fixtures_arg(parser)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ab-bench-codex-") as tmp:
        t0 = time.perf_counter()
        home, workdir, launched_at, target, sid = build_home(args, Path(tmp))
        files = sum(1 for _ in (home / "sessions").glob("*/*/*/rollout-*.jsonl"))
        dirs = sum(1 for _ in (home / "sessions").glob("*/*/*"))
        note(f"wrote {files} rollouts in {dirs} day dirs in {time.perf_counter() - t0:.1f}s")

        scan_ms, found = timed(lambda: scan_rollouts(home, workdir, launched_at), args.runs)
        if found is None or found.path != target or found.session_id != sid:
            raise SystemExit(f"scan_rollouts found {found!r}, expected {target}")
        runtime = CodexRuntime()
        ctx = LaunchContext(
            slug="agent", workdir=workdir, bin="codex", env={"CODEX_HOME": str(home)}
        )
        find_ms, found = timed(lambda: runtime.find_transcript(ctx, None, launched_at), args.runs)
        if found is None or found.path != target:
            raise SystemExit(f"find_transcript found {found!r}, expected {target}")
        # An agent launched but not prompted yet has no rollout: the scan opens every fresh
        # file and finds nothing. The reconciler repeats this once a second until it appears.
        idle = (Path(tmp) / "work" / "not-prompted-yet").resolve()
        idle.mkdir()
        miss_ms, missing = timed(lambda: scan_rollouts(home, idle, launched_at), args.runs)
        if missing is not None:
            raise SystemExit(f"scan_rollouts found {missing!r} for an agent without a rollout")
        known_runs = max(5, args.runs // 10)
        known_ms, path = timed(lambda: runtime.rollout_for(ctx.env, sid), known_runs)
        if path != target:
            raise SystemExit(f"rollout_for found {path!r}, expected {target}")
    note(
        f"scan_rollouts: min {min(scan_ms):.2f} ms, p90 {percentile(scan_ms, 90):.2f} ms; "
        f"find_transcript p99 {percentile(find_ms, 99):.2f} ms; "
        f"rollout_for (glob fallback) p99 {percentile(known_ms, 99):.2f} ms"
    )
    emit(
        {
            "ms": median(scan_ms),
            "p99_ms": percentile(scan_ms, 99),
            "files": files,
            "find_ms": median(find_ms),
            "miss_ms": median(miss_ms),
            "known_ms": median(known_ms),
            "opened": args.concurrent + 1,
        }
    )


if __name__ == "__main__":
    main()
