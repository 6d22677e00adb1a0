"""Issue 11 item 16: a claimed queue row never stays ``delivering``.

An unexpected exception while pasting (a full disk) fails the row with the reason and tells the
sender; an outcome the store cannot record yet is recorded by a later pass. Nothing is pasted
twice. No tmux and no CLI: the pane is a stand-in that records pastes or fails like a full disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import sqlite3
from pathlib import Path
from typing import Any

from bridge.fleet.tmux import PasteResult
from bridge.lifecycle.activity import ActivityTracker
from bridge.lifecycle.deliver import Deliverer
from bridge.store.db import Store
from bridge.store.queue import Kind, PromptQueue, QueueItem


class Pane:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error
        self.pastes: list[str] = []

    def paste(
        self,
        text: str,
        *,
        submit: bool = True,
        pause: float = 0.0,
        shown: object = None,
        **_: object,
    ) -> PasteResult:
        if self.error is not None:
            raise self.error
        self.pastes.append(text)
        return PasteResult("=a:", "buf", len(text), submit)

    def send_key(self, key: str, *, settle: float = 0.0) -> None:
        pass


class Tmux:
    def __init__(self, pane: Pane) -> None:
        self._pane = pane

    def pane(self, name: str, lock_file: Path) -> Pane:
        return self._pane


class FlakyQueue(PromptQueue):
    """The store refuses the first ``refusals`` outcome writes, like a full disk."""

    def __init__(self, store: Store, refusals: int) -> None:
        super().__init__(store)
        self.refusals = refusals

    def _set(self, item_id: int, status: str, outcome: str | None, column: str | None) -> None:
        if self.refusals > 0 and status in ("delivered", "failed"):
            self.refusals -= 1
            raise sqlite3.OperationalError("database or disk is full")
        super()._set(item_id, status, outcome, column)


def _setup(tmp_path: Path, pane: Pane, refusals: int = 0) -> tuple[Deliverer, PromptQueue, int]:
    store = Store(tmp_path / "state.db")
    store.upsert_agent("a", "claude", "id", "h")
    queue = FlakyQueue(store, refusals)
    item_id = queue.enqueue("a", Kind.STEER, "hello")
    assert item_id is not None
    tracker = ActivityTracker()
    tracker.launched("a", announces=True)
    tracker.screen_ready("a")
    d = Deliverer(queue, tracker, Tmux(pane), tmp_path, lambda _s: None)  # type: ignore[arg-type]
    return d, queue, item_id


def _status(queue: PromptQueue, item_id: int) -> tuple[str, Any]:
    row = queue.store.query("SELECT status, outcome FROM prompt_queue WHERE id = ?", (item_id,))
    return row[0]["status"], row[0]["outcome"]


def test_a_full_disk_while_pasting_fails_the_row_and_tells_the_sender(tmp_path: Path) -> None:
    pane = Pane(OSError(errno.ENOSPC, "No space left on device"))
    d, queue, item_id = _setup(tmp_path, pane)
    failed: list[tuple[QueueItem, str]] = []
    d.on_failed.append(lambda item, reason: failed.append((item, reason)))
    asyncio.run(d.pass_once())
    status, outcome = _status(queue, item_id)
    assert status == "failed"
    assert "No space left on device" in outcome
    assert [(i.id, r) for i, r in failed] == [(item_id, outcome)]
    asyncio.run(d.pass_once())
    assert _status(queue, item_id)[0] == "failed" and queue.queued() == []


def test_a_bug_while_pasting_fails_the_row_too(tmp_path: Path) -> None:
    d, queue, item_id = _setup(tmp_path, Pane(KeyError("surprise")))
    asyncio.run(d.pass_once())
    assert _status(queue, item_id) == (
        "failed",
        "unexpected error while pasting: KeyError: 'surprise'",
    )


def test_an_outcome_the_store_refuses_is_recorded_later_and_never_repasted(
    tmp_path: Path,
) -> None:
    pane = Pane(None)
    d, queue, item_id = _setup(tmp_path, pane, refusals=2)

    async def passes() -> None:
        for _ in range(3):
            # The old deliverer let it escape (its run loop logs it and goes on).
            with contextlib.suppress(sqlite3.OperationalError):
                await d.pass_once()

    asyncio.run(passes())
    assert _status(queue, item_id) == ("delivered", "pasted")
    assert pane.pastes == ["hello"]
