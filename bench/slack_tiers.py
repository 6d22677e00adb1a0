"""Twenty real Claude agents through the Slack emulator with every method's tier enforced.

The loopback Slack emulator (every method's Slack tier per workspace, the per-channel posting
limit and the workspace posting cap, 429 + ``Retry-After``), the real runner (``agentbridge
run``, SlackBackend over Socket Mode), ``--agents`` real Claude Code CLIs in tmux against the
fake Anthropic server. Steady traffic for all of them at once: ``--lines`` assistant records
appended to each agent's transcript (one per agent every ``--gap`` seconds, as the CLI writes
them) and ``--steers`` messages from a person in each agent's channel (each gets its receipt
reactions). Figures: the 429s the emulator served, per method; post latency (a record's
write -> the message holding it reaching the emulator, its ``ts``); lines lost or duplicated.

Run: ``python bench/slack_tiers.py [--agents 20] [--lines 12] [--gap 0.25] [--steers 2]``;
last line: ``agents= lines= lost= dup= steered= read= p50_ms= p90_ms= max_ms= 429_total=
429_<method>=... seconds= load1=``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml
from _slack_claude import runner_env, wait

from bridge.devtools import clis
from bridge.devtools.fake_anthropic import FakeAnthropic
from bridge.devtools.slack_emulator import SlackEmulator
from runtimes import agent_session_id
from runtimes.claude import ClaudeRuntime


def record(n: int) -> str:
    return json.dumps(
        {
            "type": "assistant",
            "uuid": str(uuid.uuid4()),
            "sessionId": "s",
            "message": {
                "id": f"msg_tier_{n:05d}",
                "type": "message",
                "role": "assistant",
                "content": [{"type": "text", "text": f"tier line {n:05d}"}],
                "usage": {"input_tokens": 3, "output_tokens": 5},
            },
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--lines", type=int, default=12)
    parser.add_argument("--gap", type=float, default=0.25)
    parser.add_argument("--steers", type=int, default=2)
    args = parser.parse_args()
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(var, None)
    claude = clis.ensure("claude")
    root = Path(tempfile.mkdtemp(prefix="ab-tiers-bench-"))
    socket = f"ab-bench-{uuid.uuid4().hex[:8]}"
    slugs = [f"t{n:02d}" for n in range(args.agents)]
    with SlackEmulator() as slack, FakeAnthropic() as model:
        user = slack.add_user("bench", "Bench")
        channels = {s: slack.add_channel(f"agent-{s}", members=[user]) for s in slugs}
        agents, transcripts = [], {}
        for slug in slugs:
            work = root / "work" / slug
            work.mkdir(parents=True)
            subprocess.run(["git", "init", "-q", str(work)], check=True)
            env = ClaudeRuntime().offline(root / "homes" / slug, model.url)[0]
            project = re.sub(r"[^A-Za-z0-9]", "-", str(work.resolve()))
            folder = Path(env["CLAUDE_CONFIG_DIR"], "projects", project)
            folder.mkdir(parents=True, exist_ok=True)
            transcripts[slug] = folder / f"{agent_session_id(slug)}.jsonl"
            agents.append(
                {"slug": slug, "workdir": str(work), "bin": str(claude), "env": env}
                | {"channel": f"#agent-{slug}", "allowed_users": [user]}
            )
        config = {"launch_stagger_seconds": 0.2, "agents": agents}
        (root / "agents.yaml").write_text(yaml.safe_dump(config))
        env = runner_env(root, socket, slack)
        log_path = root / "runner.log"
        runner = subprocess.Popen(
            [sys.executable, "-m", "bridge", "run", "--config", str(root / "agents.yaml")],
            env=env,
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            for slug in slugs:
                wait(
                    lambda s=slug: f"{s}: starting -> idle" in log_path.read_text(), 300, slug, 0.1
                )
            started = time.monotonic()
            written: dict[tuple[str, int], float] = {}
            steered = []
            for n in range(args.lines):
                for slug in slugs:
                    with transcripts[slug].open("a") as fh:
                        fh.write(record(n) + "\n")
                    written[(slug, n)] = time.time()
                if n < args.steers:
                    for slug in slugs:
                        ts = slack.post_as_user(user, channels[slug], f"steer {slug} {n}")
                        steered.append((slug, ts))
                time.sleep(args.gap)

            def seen() -> dict[tuple[str, int], list[float]]:
                out: dict[tuple[str, int], list[float]] = {}
                for slug in slugs:
                    for msg in slack.messages(channels[slug]):
                        for num in re.findall(r"tier line (\d+)", str(msg.get("text") or "")):
                            out.setdefault((slug, int(num)), []).append(float(msg["ts"]))
                return out

            wait(lambda: len(seen()) >= len(written), 300, "every line posted", 0.2)
            notes = {f"steer {s} {n}" for s in slugs for n in range(args.steers)}

            def read() -> set[str]:
                prompts = [r.prompt or "" for r in model.requests if r.kind == "turn"]
                return {m for p in prompts for m in re.findall(r"steer t\d+ \d+", p)}

            wait(lambda: read() >= notes, 300, "every steered message read", 0.2)
            wait(
                lambda: all(slack.reactions(channels[s], ts) for s, ts in steered),
                300,
                "every receipt reaction",
                0.2,
            )
            seconds = time.monotonic() - started
        finally:
            runner.terminate()
            runner.wait(timeout=30)
            subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
        got = seen()
        latencies = sorted((got[k][0] - t) * 1000 for k, t in written.items() if k in got)
        by_method = slack.rate_limited_by_method()
    p90 = latencies[max(0, int(len(latencies) * 0.9) - 1)]
    figures = {
        "agents": args.agents,
        "lines": len(written),
        "lost": len(set(written) - set(got)),
        "dup": sum(len(v) - 1 for v in got.values()),
        "steered": len(notes),
        "read": len(read() & notes),
        "p50_ms": f"{statistics.median(latencies):.0f}",
        "p90_ms": f"{p90:.0f}",
        "max_ms": f"{latencies[-1]:.0f}",
        "429_total": sum(by_method.values()),
        **{f"429_{m}": c for m, c in sorted(by_method.items())},
        "seconds": f"{seconds:.0f}",
        "load1": f"{os.getloadavg()[0]:.1f}",
    }
    print(" ".join(f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
