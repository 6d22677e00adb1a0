"""Soak: a million events through the real runner, and a database that holds only what retention
keeps (issue 25, "Done when").

The real runner (``agentbridge run``, console backend) supervises a real Claude Code in tmux
(fake Anthropic server on loopback). A writer appends ``--events`` real-shaped assistant lines to
that agent's transcript as fast as the runner takes them (it never runs more than ``--ahead``
lines ahead of the outbox), so the whole tail -> parse -> ledger -> post path runs for minutes.
Retention runs with a short horizon (``--horizon-s``) and pass interval, as a long-lived fleet
runs with its days-long ones. At the end the outbox is audited (every event once, in order)
and the ledger must hold no more rows than the horizon's window.

Run: ``python bench/soak.py [--events 1000000]``. Last line: ``events= seconds= per_s= lost= dup=
in_order= ledger_rows= ledger_rows_window= db_mb_peak= db_mb_end= runner_rss_mb= load1=``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import yaml

from bridge.devtools import clis
from bridge.devtools.fake_anthropic import FakeAnthropic
from bridge.store.db import Store
from runtimes import agent_session_id
from runtimes.claude import ClaudeRuntime

_NUMBER = re.compile(rb'"soak line (\d+)"')


def line(i: int) -> bytes:
    record = {
        "type": "assistant",
        "uuid": str(uuid.UUID(int=i + 1)),
        "sessionId": "soak",
        "message": {
            "id": f"msg_soak_{i:08d}",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": f"soak line {i}"}],
            "usage": {"input_tokens": 3, "output_tokens": 5},
        },
    }
    return (json.dumps(record) + "\n").encode()


class Outbox:
    """Reads the console outbox as it grows (never the whole file twice)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.seen: list[int] = []

    def read(self) -> int:
        if not self.path.exists():
            return 0
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        cut = data.rfind(b"\n") + 1
        self.offset += cut
        self.seen.extend(int(m.group(1)) for m in _NUMBER.finditer(data[:cut]))
        return len(self.seen)


def db_mb(state: Path) -> float:
    return sum(p.stat().st_size for p in state.glob("state.db*")) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--ahead", type=int, default=20_000, help="lines written ahead at most")
    parser.add_argument("--horizon-s", type=float, default=60.0, help="ledger retention")
    parser.add_argument("--every-s", type=float, default=15.0, help="retention pass interval")
    args = parser.parse_args()
    claude = clis.ensure("claude")
    root = Path(tempfile.mkdtemp(prefix="ab-soak-"))
    state = root / "state"
    sock = f"ab-soak-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, AGENTBRIDGE_HOME=str(state), AGENTBRIDGE_TMUX_SOCKET=sock)
    env.pop("SLACK_BOT_TOKEN", None)
    env.pop("SLACK_APP_TOKEN", None)
    with FakeAnthropic() as model:
        work = root / "work"
        work.mkdir()
        subprocess.run(["git", "init", "-q", str(work)], check=True)
        home = root / "home"
        config = {
            "launch_stagger_seconds": 0,
            "retention": {
                "ledger_days": args.horizon_s / 86400,
                "every_minutes": args.every_s / 60,
            },
            "agents": [
                {
                    "slug": "soak",
                    "workdir": str(work),
                    "bin": str(claude),
                    "env": ClaudeRuntime().offline(home, model.url)[0],
                }
            ],
        }
        (root / "agents.yaml").write_text(yaml.safe_dump(config))
        project = re.sub(r"[^A-Za-z0-9]", "-", str(work.resolve()))
        transcript = home / "claude" / "projects" / project / f"{agent_session_id('soak')}.jsonl"
        runner = subprocess.Popen(
            [sys.executable, "-m", "bridge", "run", "--config", str(root / "agents.yaml")],
            env=env,
            stdout=(root / "runner.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        transcript.parent.mkdir(parents=True, exist_ok=True)
        outbox = Outbox(state / "console.jsonl")
        peak = 0.0
        try:
            deadline = time.monotonic() + 120
            while "starting -> idle" not in (root / "runner.log").read_text():
                if time.monotonic() > deadline:
                    raise SystemExit("the agent never became idle")
                time.sleep(0.2)
            started = time.monotonic()
            written = 0
            fd = os.open(transcript, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            last_peek = 0.0
            while outbox.read() < args.events:
                if written < args.events and written - len(outbox.seen) < args.ahead:
                    n = min(1000, args.events - written)
                    os.write(fd, b"".join(line(i) for i in range(written, written + n)))
                    written += n
                else:
                    time.sleep(0.05)
                if time.monotonic() - last_peek > 5:
                    last_peek = time.monotonic()
                    peak = max(peak, db_mb(state))
                    print(f"{len(outbox.seen)} mirrored, db {peak:.0f} MB", file=sys.stderr)
            os.close(fd)
            seconds = time.monotonic() - started
            rss = psutil.Process(runner.pid).memory_info().rss / 2**20
            # One more retention pass past the horizon: what is left is the window's rows.
            time.sleep(args.horizon_s + 2 * args.every_s)
            peak = max(peak, db_mb(state))
        finally:
            runner.terminate()
            runner.wait(timeout=60)
            subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
    store = Store(state / "state.db", readonly=True)
    try:
        rows = int(store.query("SELECT COUNT(*) FROM ledger")[0][0])
        cutoff = time.time() - args.horizon_s - 2 * args.every_s
        window = int(
            store.query("SELECT COUNT(*) FROM ledger WHERE posted_at >= ?", (cutoff,))[0][0]
        )
    finally:
        store.close()
    seen = outbox.seen
    print(
        f"events={args.events} seconds={seconds:.1f} per_s={args.events / seconds:.0f}"
        f" lost={args.events - len(set(seen))} dup={len(seen) - len(set(seen))}"
        f" in_order={int(seen == sorted(seen))} ledger_rows={rows} ledger_rows_window={window}"
        f" db_mb_peak={peak:.1f} db_mb_end={db_mb(state):.1f} runner_rss_mb={rss:.0f}"
        f" load1={os.getloadavg()[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
