"""Mirrors in-process: real watchfiles, tailer, SQLite ledger, console backend on a temp dir."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from bridge.chat.console import ConsoleBackend
from bridge.chat.protocol import Outgoing, Posted
from bridge.config.model import Config, parse_config
from bridge.mirror.fleet import Mirrors
from bridge.mirror.routing import TurnRouter
from bridge.store.db import Store
from bridge.store.ledger import Ledger
from bridge.store.queue import Kind, PromptQueue, QueueItem
from runtimes import agent_session_id
from runtimes.claude_parse import parse_claude_line
from tests.unit.mirror_support import Harness, assistant, prompt


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
    view = Store(rig.db)  # the offset (and its bad-line count) is written after the posts

    def counted() -> bool:
        return len(rig.posted()) == 2 and Ledger(view).bad_lines("mx") == 3

    store = rig.run_until(counted)
    assert rig.posted() == ["line 1", "line 2"]
    assert Ledger(store).bad_lines("mx") == 3  # not JSON, or JSON but not an object
    store.close()
    view.close()


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


# -- exactly once on every path (issue 11, items 6 and 10) ----------------------------------


CODEX_FIXTURE = next((Path(__file__).parents[1] / "fixtures" / "codex-0.169.0").glob("*.jsonl"))


def test_codex_output_written_twice_in_one_read_is_posted_once(tmp_path: Path) -> None:
    """Codex 0.169 writes a command as ``item_completed`` and again as ``function_call`` /
    ``function_call_output``: both map to ``tool:<id>`` / ``result:<id>``. Read in one pass
    (a busy box), each must still be posted once."""
    lines = CODEX_FIXTURE.read_bytes().splitlines(keepends=True)
    outbox = tmp_path / "console.jsonl"
    h = Harness(tmp_path, ConsoleBackend(io.StringIO(), outbox), runtime="codex")
    h.append(*lines[8:15])  # the prompt .. the answer, the doubled tool call and output inside
    h.pump()
    ids = [i for raw in outbox.read_text().splitlines() for i in json.loads(raw)["event_ids"]]
    assert sorted(ids) == sorted(set(ids)), f"posted twice: {ids}"
    assert "result:call_f46713fc8925" in ids and "tool:call_f46713fc8925" in ids
    assert len(ids) == 4  # the prompt, the command, its output, the answer
    h.pump()  # and a later pass re-reading nothing posts nothing
    assert len(outbox.read_text().splitlines()) == len(ids)
    h.close()


class FlakyConsole(ConsoleBackend):
    """The console backend whose posts number ``fail_at`` (1-based) raise: a runner dying
    mid-turn, as far as the ledger can tell."""

    def __init__(self, outbox: Path, fail_at: set[int]) -> None:
        super().__init__(io.StringIO(), outbox)
        self.calls = 0
        self.fail_at = fail_at

    async def post(self, msg: Outgoing) -> Posted:
        self.calls += 1
        if self.calls in self.fail_at:
            raise RuntimeError("the runner died here")
        return await super().post(msg)


def _texts(outbox: Path) -> list[str]:
    return [json.loads(raw)["text"] for raw in outbox.read_text().splitlines()]


def _records(outbox: Path) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in outbox.read_text().splitlines()]


def _slack_prompt(h: Harness, text: str, ts: str) -> QueueItem:
    """A Slack message queued, pasted and confirmed by the runtime, as the lifecycle does it."""
    queue = PromptQueue(h.store)
    item_id = queue.enqueue("mx", Kind.STEER, text, source={"via": "slack", "ts": ts})
    assert item_id is not None and queue.begin(item_id)
    queue.delivered(item_id)
    item = queue.confirm("mx", text)
    assert item is not None
    return item


@pytest.mark.parametrize("fail_at", [1, 2], ids=["prompt-line-re-read", "resumed-mid-turn"])
def test_turn_routing_after_a_crash_comes_from_durable_state(tmp_path: Path, fail_at: int) -> None:
    """A Slack prompt's answer stays in its thread when a new runner re-reads the turn: from
    the prompt line itself (nothing was committed) or from the middle of the turn."""
    outbox = tmp_path / "console.jsonl"
    h = Harness(tmp_path, FlakyConsole(outbox, {fail_at}), router=TurnRouter())
    item = _slack_prompt(h, "fix the flaky test", "1700000000.000100")
    assert h.mirror.router is not None
    cast(TurnRouter, h.mirror.router).origin("mx", item)
    h.append(prompt("fix the flaky test"), assistant(1, "answer one"), assistant(2, "answer two"))
    with pytest.raises(RuntimeError):
        h.pump()
    # A new runner: a new router with an empty memory, the same database.
    h.open(ConsoleBackend(io.StringIO(), outbox), TurnRouter())
    h.pump()
    records = _records(outbox)
    assert [r["text"] for r in records] == ["answer one", "answer two"]
    assert {r["thread"] for r in records} == {"1700000000.000100"}
    h.close()


def test_an_origin_confirmed_before_a_crash_is_found_in_the_queue(tmp_path: Path) -> None:
    """The runtime confirmed the Slack prompt, then the runner died before its transcript line
    was read: the new runner finds the origin in the durable queue, not in memory."""
    outbox = tmp_path / "console.jsonl"
    h = Harness(tmp_path, ConsoleBackend(io.StringIO(), outbox), router=TurnRouter())
    _slack_prompt(h, "please rebase", "1700000000.000200")  # origin() never reached the router
    h.append(prompt("please rebase"), assistant(1, "rebased"))
    h.pump()
    assert [(r["text"], r["thread"]) for r in _records(outbox)] == [
        ("rebased", "1700000000.000200")
    ]
    # The claimed row is not taken again by a later prompt with the same text.
    h.append(prompt("please rebase"), assistant(2, "again"))
    h.pump()
    typed = _records(outbox)[1:]
    assert typed[0]["text"].startswith(":keyboard: *Typed in the terminal*")
    assert all(r["thread"] is None for r in typed)
    h.close()
