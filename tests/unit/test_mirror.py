"""Mirrors in-process: real watchfiles, tailer, SQLite ledger, console backend on a temp dir."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge.chat.console import ConsoleBackend
from bridge.config.model import Config, parse_config
from bridge.mirror.fleet import Mirrors
from bridge.store.db import Store
from bridge.store.ledger import Ledger
from runtimes import agent_session_id
from runtimes.claude_parse import parse_claude_line


def assistant(i: int, text: str | None = None) -> str:
    return (
        json.dumps(
            {
                "type": "assistant",
                "uuid": str(uuid.uuid4()),
                "message": {
                    "id": f"msg_{i}",
                    "role": "assistant",
                    "content": [{"type": "text", "text": text or f"line {i}"}],
                    "usage": {"input_tokens": 1, "output_tokens": 1},
                },
            }
        )
        + "\n"
    )


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.work = tmp / "work"
        self.work.mkdir()
        self.home = tmp / "claude"
        config_file = tmp / "agents.yaml"
        text = (
            f"agents:\n  - slug: mx\n    workdir: {self.work}\n"
            f"    env: {{CLAUDE_CONFIG_DIR: {self.home}}}\n"
        )
        config_file.write_text(text)
        self.config: Config = parse_config(text, config_file)
        self.db = tmp / "state.db"
        self.outbox = tmp / "console.jsonl"
        sid = agent_session_id("mx")
        self.transcript = (
            self.home / "projects" / re.sub(r"[^A-Za-z0-9]", "-", str(self.work)) / f"{sid}.jsonl"
        )
        self.transcript.parent.mkdir(parents=True)
        store = Store(self.db)
        store.upsert_agent("mx", "claude", sid, "h")
        store.set_runtime_session("mx", sid)
        store.record_launch("mx", 1, sid, False, "[]")
        store.close()

    def append(self, *lines: str) -> None:
        with self.transcript.open("a") as fh:
            fh.write("".join(lines))

    def posted(self) -> list[str]:
        if not self.outbox.exists():
            return []
        return [json.loads(line)["text"] for line in self.outbox.read_text().splitlines()]

    def run_until(self, predicate: Callable[[], Any], timeout: float = 20) -> Store:
        store = Store(self.db)

        async def main() -> None:
            mirrors = Mirrors(
                store, ConsoleBackend(io.StringIO(), self.outbox), environ={}, rescan_seconds=1
            )
            mirrors.sync(self.config)
            stop = asyncio.Event()
            task = asyncio.create_task(mirrors.run(stop))
            deadline = time.monotonic() + timeout
            while not predicate():
                assert time.monotonic() < deadline, f"timed out; posted {self.posted()}"
                await asyncio.sleep(0.02)
            stop.set()
            await task

        asyncio.run(main())
        return store


def test_live_lines_then_catch_up_after_downtime(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.append(assistant(1), assistant(2))
    rig.run_until(lambda: len(rig.posted()) == 2).close()
    assert rig.posted() == ["line 1", "line 2"]
    # Written while the runner was down: caught up from the stored offset, nothing repeated.
    rig.append(assistant(3), '{"type": "mode"}\n', assistant(4))
    rig.run_until(lambda: len(rig.posted()) == 4).close()
    assert rig.posted() == ["line 1", "line 2", "line 3", "line 4"]


def test_malformed_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.append(assistant(1), "{not json\n", "[1, 2]\n", '"str"\n', assistant(2))
    store = rig.run_until(lambda: len(rig.posted()) == 2)
    assert rig.posted() == ["line 1", "line 2"]
    assert Ledger(store).bad_lines("mx") == 3  # not JSON, or JSON but not an object
    store.close()


def test_crash_leftovers_are_settled_against_the_backend(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.append(assistant(1, "arrived"), assistant(2, "never sent"))
    # Simulate a runner killed after posting #1 (outbox has it) but before committing, and
    # killed after recording the intent for #2 but before posting it.
    store = Store(rig.db)
    ledger = Ledger(store)
    lines = rig.transcript.read_bytes().splitlines()
    ids = [parse_claude_line(line, 0, "s").events[0].id for line in lines]
    ledger.record_intents("mx", tuple(ids), "#mx")
    rig.outbox.write_text(
        json.dumps(
            {"ref": "1", "slug": "mx", "channel": "#mx", "event_id": ids[0], "text": "arrived"}
        )
        + "\n"
    )
    store.close()
    store = rig.run_until(lambda: len(rig.posted()) == 2)
    assert rig.posted() == ["arrived", "never sent"]
    assert Ledger(store).pending("mx") == []
    store.close()


def test_long_text_is_split_and_each_part_posted_once(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    paragraphs = "\n\n".join(f"paragraph {i} " + "word " * 150 for i in range(12))
    rig.append(assistant(1, paragraphs))
    rig.run_until(lambda: len(rig.posted()) >= 2 and "paragraph 11" in rig.posted()[-1])
    posted = rig.posted()
    assert all(len(p) <= 3500 for p in posted)
    assert "".join(posted).count("paragraph ") == 12
