"""A mirror whose store errs now and then keeps up (CI saw it fall 180 s behind under a 5 %
fault share): a store error backs off for at most :data:`bridge.store.retry.BACKOFF_MAX_S`, not
the chat's five minutes, and a pass that delivered something before it failed starts its backoff
over instead of doubling it."""

from __future__ import annotations

import asyncio
import io
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from bridge.chat.console import ConsoleBackend
from bridge.store.retry import BACKOFF_MAX_S
from tests.unit.mirror_support import Harness, assistant


def _harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path, ConsoleBackend(io.StringIO(), tmp_path / "outbox.jsonl"))


def test_store_errors_back_off_for_seconds_however_many_in_a_row(tmp_path: Path) -> None:
    h = _harness(tmp_path)
    h.append(assistant(1, "kept"))
    real = h.mirror.ledger.done_among
    errors = {"left": 12}

    def flaky(*args: Any) -> set[str]:
        if errors["left"]:
            errors["left"] -= 1
            raise sqlite3.OperationalError("database is locked")
        return real(*args)

    h.mirror.ledger.done_among = flaky  # type: ignore[method-assign]

    async def scenario() -> None:
        for failures in range(1, 13):
            h.mirror._retry_at = 0.0
            with pytest.raises(sqlite3.OperationalError):
                await h.mirror.pump()
            assert h.mirror.failures == failures
            assert h.mirror._retry_at - time.monotonic() <= BACKOFF_MAX_S
        h.mirror._retry_at = 0.0
        assert await h.mirror.pump() == 1

    asyncio.run(scenario())
    h.close()


def test_a_pass_that_delivered_before_it_failed_starts_the_backoff_over(tmp_path: Path) -> None:
    h = _harness(tmp_path)
    h.append(assistant(1, "first"))
    real_done, real_flush = h.mirror.ledger.done_among, h.mirror.unknown.flush
    calls = {"done": 0, "flush": 0}

    def flush() -> None:  # the first batch is posted: the agent writes on meanwhile
        calls["flush"] += 1
        if calls["flush"] == 1:
            h.append(assistant(2, "second"))
        real_flush()

    def done_among(*args: Any) -> set[str]:  # the second batch's look-up fails
        calls["done"] += 1
        if calls["done"] == 2:
            raise RuntimeError("chat is down")
        return real_done(*args)

    h.mirror.unknown.flush = flush  # type: ignore[method-assign]
    h.mirror.ledger.done_among = done_among  # type: ignore[method-assign]
    h.mirror.failures = 6  # six passes in a row had failed before

    async def scenario() -> None:
        with pytest.raises(RuntimeError):
            await h.mirror.pump()
        assert h.mirror.failures == 1, "the pass delivered 'first': not a seventh failure"
        h.mirror._retry_at = 0.0
        assert await h.mirror.pump() == 1

    asyncio.run(scenario())
    h.close()
    texts = (tmp_path / "outbox.jsonl").read_text()
    assert texts.count("first") == 1 and texts.count("second") == 1
