"""Mirror and steer latency end to end through Slack: real CLIs, the real runner, the emulator.

What runs: the loopback Slack emulator (with Slack's posting limit: 1 message/s per channel,
burst 4, 429 + Retry-After), the fake Anthropic and OpenAI servers, and ``python -m bridge run``
with ``SLACK_BOT_TOKEN``/``SLACK_APP_TOKEN``/``SLACK_API_URL`` pointing at the emulator, so the
runner uses the real SlackBackend (Web API + Socket Mode). Two agents, a real Claude Code and a
real Codex (the pinned versions), each with its own channel.

Each round trip is a person's post in the agent's channel (``post_as_user``), one at a time, each
once the previous turn has ended and at least ``--gap`` (1 s) after the previous post: a person
posting faster than Slack's sustained one message a second per channel makes every answer wait
for its slot by design (that case is the burst run's). Per round trip:

- ``steer`` = the post's ``ts`` -> the fake model receiving the request that holds it (the fakes
  stamp each request with ``time.time()`` on arrival);
- ``mirror`` = the ``timestamp`` of the transcript record holding the model's answer (the
  earliest record that holds it) -> the runner's post of that answer reaching the emulator (the
  message's ``ts``, which the emulator takes from ``time.time()`` when it stores the post);
- ``floor`` = the same record's ``timestamp`` -> the moment a 2 ms poller in this process first
  saw the line in the file: what the CLI itself costs before anyone can mirror anything (Claude
  writes its transcript after it draws the answer, so its file lags the record's timestamp).

The first round trip per runtime warms up (session start) and is not counted. Then a burst run:
``--burst`` (300) assistant records, real Claude lines from the Claude agent's own transcript
with new ids and texts, are appended to that transcript 10 at a time every 20 ms while the agent
is idle; the runner must post every one, in order, on that one channel. Lost, out-of-order and
duplicated events, the number of messages they were coalesced into and the emulator's 429
count are reported.

Run: ``python bench/e2e_latency.py [--rounds 12] [--burst 300]``. Progress on stderr; the last
line holds the figures: ``claude_mirror_p50_ms= claude_mirror_p90_ms= claude_floor_p50_ms=
claude_steer_p50_ms= claude_steer_p90_ms=`` (the same for ``codex_``) ``rounds= burst_events=
burst_lost= burst_dup= burst_in_order= burst_messages= burst_429= burst_s= load1=``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from _common import emit, note, percentile
from _slack_claude import runner_env

from bridge.devtools import clis
from bridge.devtools.fake_anthropic import FakeAnthropic
from bridge.devtools.fake_openai import FakeOpenAI
from bridge.devtools.slack_emulator import SlackEmulator
from runtimes import get_runtime

T = TypeVar("T")


def wait(
    predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.002
) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"timed out waiting for {what}")


def record_time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class Transcripts(threading.Thread):
    """Polls every ``*.jsonl`` under a CLI home every 2 ms; remembers when each line appeared."""

    def __init__(self, home: Path) -> None:
        super().__init__(daemon=True)
        self.home = home
        self.sizes: dict[Path, int] = {}
        self.lines: list[tuple[float, Path, str]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self._partial: dict[Path, bytes] = {}

    def run(self) -> None:
        last_glob = 0.0
        while not self.stop.is_set():
            now = time.monotonic()
            if now - last_glob > 0.2:
                for path in self.home.rglob("*.jsonl"):
                    self.sizes.setdefault(path, 0)
                last_glob = now
            for path, size in list(self.sizes.items()):
                try:
                    with path.open("rb") as fh:
                        fh.seek(size)
                        data = fh.read()
                except OSError:
                    continue
                if not data:
                    continue
                seen = time.time()
                self.sizes[path] = size + len(data)
                buf = self._partial.get(path, b"") + data
                *complete, rest = buf.split(b"\n")
                self._partial[path] = rest
                with self.lock:
                    for raw in complete:
                        self.lines.append((seen, path, raw.decode("utf-8", "replace")))
            time.sleep(0.002)

    def first(self, needle: str) -> tuple[float, float, Path] | None:
        """(record timestamp, seen at, file) of the first record line holding ``needle``."""
        with self.lock:
            hits = [(seen, path, line) for seen, path, line in self.lines if needle in line]
        best: tuple[float, float, Path] | None = None
        for seen, path, line in hits:
            try:
                stamp = json.loads(line).get("timestamp")
            except ValueError:
                continue
            if isinstance(stamp, str) and (best is None or record_time(stamp) < best[0]):
                best = (record_time(stamp), seen, path)
        return best


class Bench:
    def __init__(self, root: Path, slack: SlackEmulator, models: dict[str, Any]) -> None:
        self.root = root
        self.slack = slack
        self.models = models
        self.user = slack.add_user("bench", "Bench")
        self.channels: dict[str, str] = {}
        self.homes: dict[str, Path] = {}
        self.log = root / "runner.log"

    def config(self) -> dict[str, Any]:
        agents = []
        for runtime in ("claude", "codex"):
            work = self.root / "work" / runtime
            work.mkdir(parents=True)
            subprocess.run(["git", "init", "-q", str(work)], check=True)
            home = self.homes[runtime] = self.root / "homes" / runtime
            impl = get_runtime(runtime)
            env, args = impl.offline(home, self.models[impl.model_api].url)
            self.channels[runtime] = self.slack.add_channel(f"agent-{runtime}", [self.user])
            agents.append(
                {
                    "slug": runtime,
                    "runtime": runtime,
                    "workdir": str(work),
                    "bin": str(clis.ensure(runtime)),
                    "channel": f"#agent-{runtime}",
                    "allowed_users": [self.user],
                    "env": env,
                    "args": args,
                }
            )
        return {"launch_stagger_seconds": 0, "agents": agents}

    def log_count(self, text: str) -> int:
        return self.log.read_text(errors="replace").count(text) if self.log.exists() else 0

    def bot_message(self, channel: str, needle: str) -> dict[str, Any] | None:
        for m in self.slack.messages(channel):
            if m.get("bot_id") and needle in str(m.get("text", "")):
                return m
        return None

    def round_trip(self, runtime: str, i: int, watch: Transcripts) -> tuple[float, float, float]:
        channel, model = self.channels[runtime], self.models[get_runtime(runtime).model_api]
        probe = f"probe {runtime} r{i:03d}x"
        ended = self.log_count(f"{runtime}: working -> idle")
        ts = self.slack.post_as_user(self.user, channel, probe)
        request = wait(
            lambda: next(
                (r for r in model.requests if r.kind == "turn" and probe in (r.prompt or "")),
                None,
            ),
            60,
            f"{probe} at the model",
        )
        steer = request.time - float(ts)
        posted = wait(lambda: self.bot_message(channel, f"ack: {probe}"), 60, f"{probe} answer")
        record = wait(lambda: watch.first(f"ack: {probe}"), 10, f"{probe} answer in the file")
        mirror = float(posted["ts"]) - record[0]
        floor = record[1] - record[0]
        wait(
            lambda: self.log_count(f"{runtime}: working -> idle") > ended,
            60,
            f"{probe}'s turn to end",
            interval=0.01,
        )
        return mirror, steer, floor

    def burst(self, count: int, watch: Transcripts) -> dict[str, Any]:
        """Append ``count`` real-shaped assistant records to Claude's transcript, quickly."""
        channel = self.channels["claude"]
        found = watch.first("ack: probe claude")
        if found is None:
            raise SystemExit("no Claude transcript seen")
        path = found[2]
        template = next(
            json.loads(line)
            for line in path.read_text().splitlines()
            if '"type":"assistant"' in line.replace(" ", "") and "ack: probe claude" in line
        )
        limited = self.slack.rate_limited_count
        before = {m["ts"] for m in self.slack.messages(channel)}
        lines = []
        for n in range(count):
            rec = json.loads(json.dumps(template))
            rec["uuid"] = str(uuid.uuid4())
            rec["message"]["id"] = f"msg_burst{n:04d}{uuid.uuid4().hex[:12]}"
            rec["message"]["content"] = [{"type": "text", "text": f"burst event {n:04d} done"}]
            lines.append(json.dumps(rec))
        t0 = time.monotonic()
        with path.open("a") as fh:
            for start in range(0, count, 10):
                fh.write("\n".join(lines[start : start + 10]) + "\n")
                fh.flush()
                time.sleep(0.02)

        def texts() -> list[str]:
            new = [m for m in self.slack.messages(channel) if m["ts"] not in before]
            new.sort(key=lambda m: float(m["ts"]))
            return [str(m.get("text", "")) for m in new if m.get("bot_id")]

        def all_there() -> bool:
            joined = "\n".join(texts())
            return f"burst event {count - 1:04d} done" in joined and all(
                f"burst event {n:04d} done" in joined for n in range(count)
            )

        try:
            wait(all_there, 180, "every burst event in Slack", interval=0.05)
        except SystemExit:
            note("burst: not every event arrived within 180 s")
        seconds = time.monotonic() - t0
        joined = "\n".join(texts())
        positions = [joined.find(f"burst event {n:04d} done") for n in range(count)]
        present = [p for p in positions if p >= 0]
        dup = sum(joined.count(f"burst event {n:04d} done") > 1 for n in range(count))
        return {
            "burst_events": count,
            "burst_lost": count - len(present),
            "burst_dup": dup,
            "burst_in_order": int(present == sorted(present)),
            "burst_messages": len(texts()),
            "burst_429": self.slack.rate_limited_count - limited,
            "burst_s": seconds,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=12, help="round trips per runtime (12)")
    parser.add_argument("--burst", type=int, default=300, help="events in the burst run (300)")
    parser.add_argument(
        "--gap",
        type=float,
        default=1.0,
        help="least seconds between two probes' posts (1.0: a channel's sustained Slack rate)",
    )
    args = parser.parse_args()
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        os.environ.pop(var, None)
    root = Path(tempfile.mkdtemp(prefix="ab-e2e-bench-"))
    socket = f"ab-e2e-{uuid.uuid4().hex[:8]}"
    figures: dict[str, Any] = {}
    load = os.getloadavg()[0]
    with (
        SlackEmulator() as slack,
        FakeAnthropic(log_path=root / "anthropic.jsonl") as anthropic,
        FakeOpenAI(log_path=root / "openai.jsonl") as openai,
    ):
        bench = Bench(root, slack, {"anthropic": anthropic, "openai": openai})
        (root / "agents.yaml").write_text(yaml.safe_dump(bench.config()))
        env = runner_env(root, socket, slack)
        watches = {rt: Transcripts(bench.homes[rt]) for rt in ("claude", "codex")}
        for w in watches.values():
            w.start()
        with bench.log.open("wb") as log:
            runner = subprocess.Popen(
                [sys.executable, "-m", "bridge", "run", "--config", str(root / "agents.yaml")],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            for runtime in ("claude", "codex"):
                wait(
                    lambda r=runtime: bench.log_count(f"{r}: starting -> idle"),  # type: ignore[misc]
                    120,
                    f"{runtime} ready",
                    interval=0.05,
                )
            for runtime in ("claude", "codex"):
                mirror: list[float] = []
                steer: list[float] = []
                floor: list[float] = []
                last = 0.0
                for i in range(args.rounds + 1):
                    time.sleep(max(0.0, last + args.gap - time.monotonic()))
                    last = time.monotonic()
                    m, s, f = bench.round_trip(runtime, i, watches[runtime])
                    note(f"{runtime} r{i}: mirror {m * 1000:.0f} ms, steer {s * 1000:.0f} ms, "
                         f"floor {f * 1000:.0f} ms{' (warm-up)' if i == 0 else ''}")  # fmt: skip
                    if i:
                        mirror.append(m * 1000)
                        steer.append(s * 1000)
                        floor.append(f * 1000)
                figures[f"{runtime}_mirror_p50_ms"] = percentile(mirror, 50)
                figures[f"{runtime}_mirror_p90_ms"] = percentile(mirror, 90)
                figures[f"{runtime}_floor_p50_ms"] = percentile(floor, 50)
                figures[f"{runtime}_steer_p50_ms"] = percentile(steer, 50)
                figures[f"{runtime}_steer_p90_ms"] = percentile(steer, 90)
            figures["rounds"] = args.rounds
            figures.update(bench.burst(args.burst, watches["claude"]))
        finally:
            runner.terminate()
            runner.wait(timeout=30)
            subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
            for w in watches.values():
                w.stop.set()
    figures["load1"] = max(load, os.getloadavg()[0])
    note(f"runner log: {bench.log}")
    emit(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
