"""Scripted loopback model servers that let the real Claude Code and Codex CLIs run offline.

Tests and `agentbridge demo` drive genuine agent binaries; these fakes replace only the model,
answering from a tiny deterministic script (see `fake_script.decide`) so a test can predict what
each agent will say and do. The recipe for pointing each CLI here is in docs/real-cli-recipe.md.

Run both by hand with `python -m bridge.devtools.fake_models`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from bridge.devtools.fake_anthropic import FakeAnthropic
from bridge.devtools.fake_openai import FakeOpenAI
from bridge.devtools.fake_script import (
    DEFAULT_USAGE,
    FakeModelServer,
    LoggedRequest,
    Reply,
    Turn,
    decide,
)

__all__ = [
    "DEFAULT_USAGE",
    "FakeAnthropic",
    "FakeModelServer",
    "FakeOpenAI",
    "LoggedRequest",
    "Reply",
    "Turn",
    "decide",
    "main",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bridge.devtools.fake_models",
        description="Run the scripted fake Anthropic and OpenAI servers until Ctrl-C.",
    )
    parser.add_argument("--anthropic-port", type=int, default=0)
    parser.add_argument("--openai-port", type=int, default=0)
    parser.add_argument("--log-dir", type=Path, help="write anthropic.jsonl and openai.jsonl here")
    args = parser.parse_args(argv)
    log_dir: Path | None = args.log_dir
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
    anthropic = FakeAnthropic(
        port=args.anthropic_port, log_path=log_dir / "anthropic.jsonl" if log_dir else None
    )
    openai = FakeOpenAI(
        port=args.openai_port, log_path=log_dir / "openai.jsonl" if log_dir else None
    )
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    with anthropic, openai:
        print(f"fake-anthropic {anthropic.url}", flush=True)
        print(f"fake-openai {openai.url}/v1", flush=True)
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
