"""A store that is away or slow (issue 20, items 7 and 8), on the SQLite engine: the real Postgres
restart is in tests/integration/test_pg_outage.py and tests/e2e/test_two_hosts.py.

- A core task never dies of a store error, nor goes deaf while the runner looks healthy: the
  chat side's consumer holds a message until the store is back; the heartbeat beats on; and a
  consumer that does die ends the chat task (so the runner stops and systemd restarts it).
- No store call runs on the event loop: with every store call taking a long time, steering,
  activity and a click's routing go on without the loop ever stalling (the runner's own
  loop-lag monitor, :func:`bridge.aio.watch_lag`, is the judge).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.aio import watch_lag
from bridge.channel.chatbridge import ChatBridge
from bridge.channel.inbound import Inbound
from bridge.chat.console import ConsoleBackend
from bridge.chat.protocol import Action, Incoming, Receipt
from bridge.cluster.heartbeat import heartbeat
from bridge.cluster.router import RoutedBackend
from bridge.config.model import Config, parse_config
from bridge.fleet.reconcile import Reconciler
from bridge.fleet.tmux import TmuxServer
from bridge.lifecycle.activity import Activity
from bridge.lifecycle.core import Lifecycle
from bridge.store.db import Conn, Store
from bridge.store.hosts import HostBook
from bridge.store.queue import PromptQueue


class FlakyStore(Store):
    """A real SQLite store whose calls, while ``down`` is set, fail as an unreachable database
    does (or, with ``delay``, each take that long first: a database that answers slowly)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.down = threading.Event()
        self.failures = 0
        self.delay = 0.0

    def _gate(self) -> None:
        if self.delay:
            time.sleep(self.delay)
        if self.down.is_set():
            self.failures += 1
            raise sqlite3.OperationalError("unable to open database file (test: store away)")

    @contextlib.contextmanager
    def tx(self) -> Iterator[Conn]:
        self._gate()
        with super().tx() as db:
            yield db

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        self._gate()
        return super().query(sql, params)


def _config(tmp_path: Path, extra: str = "") -> Config:
    (tmp_path / "w").mkdir(exist_ok=True)
    text = f"""
agents:
  - {{slug: a1, workdir: {tmp_path / "w"}, channel: "#a1", allowed_users: [U0123456789]}}
{extra}"""
    return parse_config(text, tmp_path / "agents.yaml")


def _message(ts: str, text: str = "hello") -> Incoming:
    return Incoming("#a1", "U0123456789", text, ts, event_id=f"ev-{ts}", receipt=Receipt())


class Quiet(ConsoleBackend):
    def __init__(self) -> None:
        super().__init__(stream=io.StringIO())


class Broken(Quiet):
    """A backend whose stream of messages breaks on a store error (the router's drain did)."""

    async def receive(self) -> AsyncIterator[Incoming]:
        await asyncio.sleep(0)
        raise sqlite3.OperationalError("the database went away")
        yield  # pragma: no cover  (an async generator)


def _chat(tmp_path: Path, store: Store, backend: ConsoleBackend) -> ChatBridge:
    config = _config(tmp_path)
    tmux = TmuxServer("ab-unused-outage")
    lifecycle = Lifecycle(config, store, tmux, tmp_path, tmp_path / "locks", lambda s, t: None)
    reconciler = Reconciler(config, store, tmux, mark="m")
    return ChatBridge(config, backend, lifecycle, reconciler, tmp_path / "inbox")


# -- item 7: nobody goes deaf ----------------------------------------------------------------


def test_the_chat_task_ends_when_its_consumer_dies_instead_of_running_on_deaf(
    tmp_path: Path,
) -> None:
    """The runner looked healthy with its consumer dead: the chat task must end with the error
    (the daemon then stops the runner and systemd restarts it)."""
    chat = _chat(tmp_path, Store(tmp_path / "state.db"), Broken())

    async def scenario() -> None:
        stop = asyncio.Event()
        run = asyncio.create_task(chat.run(stop))
        done, _ = await asyncio.wait({run}, timeout=30)  # a guard against a hang, not a timing
        if not done:
            stop.set()
            await run
            pytest.fail("the chat task kept running with its consumer dead")
        with pytest.raises(sqlite3.OperationalError, match="went away"):
            run.result()

    asyncio.run(scenario())


def test_a_message_that_meets_a_store_outage_is_held_and_queued_once_it_is_back(
    tmp_path: Path,
) -> None:
    store = FlakyStore(tmp_path / "state.db")
    backend = Quiet()
    chat = _chat(tmp_path, store, backend)

    async def scenario() -> None:
        msg = _message("1.0001")
        stop = asyncio.Event()
        store.down.set()
        run = asyncio.create_task(chat.run(stop))
        backend._inbox.put_nowait(msg)
        while store.failures < 3:  # the consumer retries (with backoff) while it is away
            assert msg.receipt is not None and not msg.receipt.settled, "refused, not held"
            await asyncio.sleep(0.01)
        assert msg.receipt is not None and not msg.receipt.settled  # held: neither kept nor refused
        store.down.clear()
        await asyncio.wait_for(msg.receipt.wait(), 30)  # kept: Slack may have its ack now
        stop.set()
        await run

    asyncio.run(scenario())
    assert [i.text for i in PromptQueue(store).queued()] == ["hello"]


def test_the_heartbeat_beats_on_through_a_store_error(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path / "state.db")
    config = _config(tmp_path, "host_down_after_seconds: 1")
    book = HostBook(store)

    async def scenario() -> None:
        stop = asyncio.Event()
        store.down.set()
        beat = asyncio.create_task(heartbeat(store, "h1", "1", lambda: config, print, stop))
        while store.failures < 2:
            assert not beat.done(), "the heartbeat ended on a store error"
            await asyncio.sleep(0.01)
        store.down.clear()
        while not await asyncio.to_thread(book.hosts):
            assert not beat.done(), "the heartbeat ended on a store error"
            await asyncio.sleep(0.01)
        stop.set()
        await beat

    asyncio.run(scenario())
    assert [h.host for h in book.hosts()] == ["h1"]


# -- item 8: nothing on the loop ----------------------------------------------------------------


def test_slow_store_calls_never_stall_the_event_loop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every store call takes 300 ms (a database that is slow, or one the pool waits for):
    steering, an activity change and a click's routing still leave the loop free."""
    store = FlakyStore(tmp_path / "state.db")
    config = _config(tmp_path)
    backend = Quiet()
    queue = PromptQueue(store)
    inbound = Inbound(config, queue, backend, tmp_path / "inbox", channel_ids=dict)
    tmux = TmuxServer("ab-unused-outage")
    lifecycle = Lifecycle(config, store, tmux, tmp_path, tmp_path / "locks", lambda s, t: None)
    router = RoutedBackend(backend, store, "a", config)  # type: ignore[arg-type]
    clicked: list[Action] = []

    async def on_action(action: Action) -> str | None:
        clicked.append(action)
        return None

    router.on_action = on_action

    async def scenario() -> None:
        stop = asyncio.Event()
        lag = asyncio.create_task(watch_lag(stop))
        await asyncio.sleep(0)  # the monitor starts measuring
        store.delay = 0.3
        msg = _message("1.0002", "steer me")
        assert await inbound.handle(msg) is not None
        lifecycle.tracker.listeners[-1]("a1", Activity.IDLE, Activity.WORKING)
        later = getattr(lifecycle, "later", None)
        if later is not None:
            await later.idle()  # the activity row is written (off the loop)
        click = Action("U0123456789", "#a1", "1.0002", "x:y", thread="1.0002")
        assert await backend.on_action(click) is None  # type: ignore[misc]
        assert clicked == [click]
        stop.set()
        await lag

    with caplog.at_level(logging.WARNING, logger="agentbridge.loop"):
        asyncio.run(scenario())
    assert not [r.message for r in caplog.records if "stalled" in r.message]
    row = store.agent("a1")
    assert row is None or row.activity == "working"
    assert [i.text for i in queue.queued()] == ["steer me"]


def test_the_loop_lag_monitor_reports_a_blocking_call(caplog: pytest.LogCaptureFixture) -> None:
    """The guard the test above relies on: a call that blocks the loop is logged."""

    async def scenario() -> None:
        stop = asyncio.Event()
        lag = asyncio.create_task(watch_lag(stop))
        await asyncio.sleep(0)  # the monitor starts measuring
        time.sleep(0.4)  # a blocking call on the loop, on purpose
        stop.set()
        await lag

    with caplog.at_level(logging.WARNING, logger="agentbridge.loop"):
        asyncio.run(scenario())
    stalls = [r.message for r in caplog.records if "event loop stalled" in r.message]
    assert len(stalls) == 1 and int(stalls[0].split()[3]) >= 300


def test_a_loop_stuck_for_good_is_reported_while_it_is_stuck() -> None:
    """A deadlocked loop never comes back to log its stall: the sampling thread says where it
    is (its whole stack) while it is still stuck. The loop here is released only by that report."""
    released = threading.Event()
    reports: list[str] = []

    class Release(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "event loop stuck" in record.getMessage():
                reports.append(record.getMessage())
                released.set()

    def blocked_for_good() -> None:
        assert released.wait(60), "the stuck loop was never reported"

    async def scenario() -> None:
        stop = asyncio.Event()
        lag = asyncio.create_task(watch_lag(stop, stuck=0.5))
        await asyncio.sleep(0)  # the monitor starts measuring
        blocked_for_good()  # on the loop, on purpose
        stop.set()
        await lag

    handler = Release()
    logger = logging.getLogger("agentbridge.loop")
    logger.addHandler(handler)
    try:
        asyncio.run(scenario())
    finally:
        logger.removeHandler(handler)
    assert len(reports) == 1 and "blocked_for_good" in reports[0], reports
