"""Issue 11 item 17: each object has one owning thread or loop, and nothing crosses unsafely.

- A schedule firing reaches the lifecycle on the event loop's thread, never APScheduler's worker
  thread (where setting the deliverer's ``asyncio.Event`` is not thread-safe).
- The reconciler's config changes only between passes: a reload during a pass neither waits for
  it nor swaps the config under it.
- Starting the hook server never touches the process-wide umask (the reconciler's thread may be
  creating files at that moment), and its socket is still 0600.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from bridge.config.model import Config, parse_config
from bridge.fleet.reconcile import Reconciler
from bridge.fleet.tmux import PaneState
from bridge.hooks.server import HookServer, TokenBook
from bridge.lifecycle.schedule import Scheduler, fire
from bridge.store.db import Store


def test_a_schedule_firing_reaches_the_event_loop_thread(tmp_path: Path) -> None:
    seen: list[bool] = []

    async def main() -> None:
        loop_thread = threading.get_ident()
        sched = Scheduler(
            tmp_path / "schedules.db",
            lambda _s, _k, _p: seen.append(threading.get_ident() == loop_thread),
        )
        sched.scheduler.start()
        sched.scheduler.add_job(
            fire,
            trigger="date",
            run_date=dt.datetime.now(dt.UTC),
            args=["a", "k", "prompt"],
            id="now",
        )
        deadline = time.monotonic() + 30
        while not seen:
            assert time.monotonic() < deadline, "the schedule never fired"
            await asyncio.sleep(0.02)
        sched.shutdown()

    asyncio.run(main())
    assert seen == [True]


class GatedTmux:
    """A tmux stand-in whose snapshot waits until the test lets the pass go on."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def snapshot(self) -> dict[str, PaneState]:
        self.entered.set()
        assert self.release.wait(60)
        return {}


def _config(tmp_path: Path, *slugs: str) -> Config:
    text = "agents:\n" + "".join(
        f"  - slug: {s}\n    workdir: {tmp_path}\n    enabled: false\n" for s in slugs
    )
    return parse_config(text or "agents: []\n", tmp_path / "agents.yaml")


def test_a_reload_during_a_pass_waits_for_the_next_pass(tmp_path: Path) -> None:
    old, new = _config(tmp_path, "old"), _config(tmp_path, "new")
    tmux = GatedTmux()
    store = Store(tmp_path / "state.db")
    rec = Reconciler(old, store, tmux, mark="m", environ={})  # type: ignore[arg-type]
    passing = threading.Thread(target=rec.reconcile_once)
    passing.start()
    assert tmux.entered.wait(60)
    reload = threading.Thread(target=rec.update_config, args=(new,))
    reload.start()
    reload.join(60)
    assert not reload.is_alive(), "a reload waited for a whole reconcile pass"
    assert rec.config is old, "the config was swapped under a running pass"
    tmux.release.set()
    passing.join(60)
    rec.reconcile_once()
    assert rec.config is new
    store.close()


def test_starting_the_hook_server_leaves_the_umask_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real_umask = os.umask

    def spy(mask: int) -> int:
        calls.append(mask)
        return real_umask(mask)

    monkeypatch.setattr(os, "umask", spy)
    store = Store(tmp_path / "state.db")
    path = tmp_path / "hooks.sock"

    async def main() -> None:
        server = HookServer(path, TokenBook(store), lambda _m: None)
        await server.start()
        try:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        finally:
            await server.close()

    asyncio.run(main())
    assert calls == []
    store.close()
