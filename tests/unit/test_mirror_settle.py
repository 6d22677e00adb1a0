"""Issue 11 item 16: a 5xx while settling one agent's unfinished posts at start-up neither kills
the mirror task (the runner would exit and restart-loop) nor holds up the other agents; that
agent's settle is retried with backoff, and then its posts go out exactly once."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from bridge.chat.console import ConsoleBackend
from bridge.config.model import parse_config
from bridge.mirror import fleet
from bridge.mirror.fleet import Mirrors
from bridge.store.db import Store
from bridge.store.ledger import Ledger
from runtimes import agent_session_id
from runtimes.claude_parse import parse_claude_line
from tests.unit.test_mirror import assistant


class Flaky(ConsoleBackend):
    """Slack answering 5xx to every history lookup in ``#a`` until ``healed``."""

    def __init__(self, outbox: Path) -> None:
        super().__init__(io.StringIO(), outbox)
        self.healed = False
        self.failures = 0

    async def find_posted(
        self, channel: str, event_ids: Sequence[str], thread: str | None = None
    ) -> dict[str, str]:
        if channel == "#a" and not self.healed:
            self.failures += 1
            raise RuntimeError("conversations.history: HTTP 503")
        return await super().find_posted(channel, event_ids, thread)


def test_a_failing_settle_is_retried_for_that_agent_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fleet, "SETTLE_BACKOFF_S", 0.05, raising=False)
    monkeypatch.setattr(fleet, "SETTLE_BACKOFF_MAX_S", 0.2, raising=False)
    text = "agents:\n"
    transcripts: dict[str, Path] = {}
    for slug in ("a", "b"):
        work, home = tmp_path / f"work-{slug}", tmp_path / f"home-{slug}"
        work.mkdir()
        text += f"  - slug: {slug}\n    workdir: {work}\n    env: {{CLAUDE_CONFIG_DIR: {home}}}\n"
        project = re.sub(r"[^A-Za-z0-9]", "-", str(work))
        transcripts[slug] = home / "projects" / project / f"{agent_session_id(slug)}.jsonl"
        transcripts[slug].parent.mkdir(parents=True)
    config = parse_config(text, tmp_path / "agents.yaml")
    db = tmp_path / "state.db"
    store = Store(db)
    for slug in ("a", "b"):
        sid = agent_session_id(slug)
        store.upsert_agent(slug, "claude", sid, "h")
        store.set_runtime_session(slug, sid)
        store.record_launch(slug, 1, sid, False, "[]")
    # Agent a: a runner was killed after recording the intent for its line, before posting.
    transcripts["a"].write_text(assistant(1, "a: left over"))
    event = parse_claude_line(transcripts["a"].read_bytes().strip(), 0, "s").events[0]
    Ledger(store).record_intents("a", (event.id,), "#a")
    transcripts["b"].write_text(assistant(2, "b: live"))
    outbox = tmp_path / "console.jsonl"
    backend = Flaky(outbox)

    def posted(channel: str) -> list[str]:
        if not outbox.exists():
            return []
        records = [json.loads(line) for line in outbox.read_text().splitlines()]
        return [r["text"] for r in records if r["channel"] == channel]

    async def until(cond: object, what: str) -> None:
        deadline = time.monotonic() + 30
        while not (callable(cond) and cond()):
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.02)

    async def main() -> None:
        mirrors = Mirrors(store, backend, environ={}, rescan_seconds=1)
        mirrors.sync(config)
        stop = asyncio.Event()
        task = asyncio.create_task(mirrors.run(stop))
        await until(lambda: posted("#b") == ["b: live"] or task.done(), "b mirrored")
        await until(lambda: backend.failures >= 3 or task.done(), "a's settle retried")
        assert not task.done(), "the mirror task died over one agent's outage"
        assert posted("#a") == []  # nothing of a's goes out before its leftovers are settled
        backend.healed = True
        await until(lambda: posted("#a"), "a mirrored after the outage")
        stop.set()
        await task

    asyncio.run(main())
    assert posted("#a") == ["a: left over"]
    assert Ledger(store).pending("a") == []
    store.close()
