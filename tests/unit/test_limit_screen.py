"""A usage limit on screen at the first look at a turn, and a better reset after the wait opened
(issue 20 item 14). The real Claude at a limit is in tests/integration/test_limit_first_request.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from datetime import datetime
from pathlib import Path

from bridge.config.watchdog import WatchdogConfig
from bridge.fleet.tmux import TmuxServer
from bridge.lifecycle.activity import Activity, ActivityTracker
from bridge.lifecycle.limits import LimitWatch
from bridge.lifecycle.notice import Alert
from bridge.lifecycle.stuck import StuckWatch
from bridge.store.db import Store
from bridge.store.queue import PromptQueue
from runtimes import get_runtime
from runtimes.events import Event, EventKind
from tests.conftest import wait_until


def clock_text(at: float) -> str:
    """``3:57pm``, as Claude prints a reset."""
    local = datetime.fromtimestamp(at)
    return f"{local.hour % 12 or 12}:{local.minute:02d}{'am' if local.hour < 12 else 'pm'}"


def pane_showing(tmux_socket: str, slug: str, text: str, tmp_path: Path) -> None:
    shown = tmp_path / f"{slug}.txt"
    shown.write_text(text)
    size = ["-x", "120", "-y", "30"]
    command = f"cat {shown}; exec sleep 600"
    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", slug, *size, command])


def capture(tmux_socket: str, slug: str) -> str:
    args = ["tmux", "-L", tmux_socket, "capture-pane", "-p", "-t", f"={slug}:"]
    return subprocess.run(args, capture_output=True, text=True, check=False).stdout


def test_a_retry_line_already_on_screen_at_the_first_look_is_read(
    tmux_socket: str, tmp_path: Path
) -> None:
    reset = time.time() + 6 * 60
    retry = f"✻ 5-hour limit reached · retrying in 31s ({clock_text(reset)}) · attempt 7/10"
    old_codex = "■ You’ve hit your usage limit. Upgrade to Pro or try again at 3:04 AM."
    pane_showing(tmux_socket, "claude-a", f"❯ a job\n\n{retry}\n", tmp_path)
    pane_showing(tmux_socket, "codex-a", f"{old_codex}\n\n› the next job\n", tmp_path)
    runtimes = {"claude-a": get_runtime("claude"), "codex-a": get_runtime("codex")}
    tracker = ActivityTracker()
    seen: list[tuple[str, Event]] = []
    watch = StuckWatch(
        tracker,
        TmuxServer(tmux_socket),
        tmp_path / "locks",
        runtimes.get,
        lambda _slug: WatchdogConfig(stuck_after_minutes=None),
        lambda _alert: None,
        screen_event=lambda slug, event: seen.append((slug, event)),
    )
    for slug in runtimes:
        tracker.get(slug).state = Activity.WORKING
    wait_until(lambda: "retrying" in capture(tmux_socket, "claude-a"), 10, "the pane drawn")
    asyncio.run(watch.pass_once())  # the first look at both turns
    assert [slug for slug, _ in seen] == ["claude-a"]  # the old turn's Codex line is not news
    ((_, hint),) = seen
    assert hint.kind is EventKind.USAGE and hint.resets_at is not None
    assert abs(hint.resets_at - reset) < 60
    asyncio.run(watch.pass_once())  # and again at every look while it is there
    assert [slug for slug, _ in seen] == ["claude-a", "claude-a"]


def watch(tmp_path: Path) -> tuple[LimitWatch, list[Alert], list[float]]:
    store = Store(tmp_path / "s.db")
    tracker = ActivityTracker()
    tracker.get("a").state = Activity.WORKING
    clock = [10_000.0]
    alerts: list[Alert] = []
    cfg = WatchdogConfig(limit_grace_seconds=5, limit_fallback_minutes=15)
    limits = LimitWatch(
        store, tracker, PromptQueue(store), lambda _s: cfg, alerts.append, clock=lambda: clock[0]
    )
    return limits, alerts, clock


def screen_hint(at: float) -> Event:
    return Event(
        EventKind.USAGE,
        "pane:x",
        resets_at=at,
        used_percent=100.0,
        meta={"reset_source": "clock", "live": True},
    )


def test_the_screen_hint_sets_the_reset_to_the_end_of_its_minute(tmp_path: Path) -> None:
    limits, alerts, clock = watch(tmp_path)
    limits.signal("a", screen_hint(10_300.0))  # "(3:57pm)": some time in that minute
    limits.signal("a", Event(EventKind.USAGE_LIMIT, "hook-limit:p"))  # Claude gave up
    assert limits.waiting_until("a") == 10_360.0
    assert [a.kind for a in alerts] == ["limit"]
    assert "resets at" in alerts[0].text and "no reset time" not in alerts[0].text
    clock[0] = 10_366.0
    limits.tick()
    assert limits.queue.queued("a")


def test_a_better_reset_after_the_wait_opened_moves_it_and_is_told_once(tmp_path: Path) -> None:
    limits, alerts, clock = watch(tmp_path)
    limits.signal("a", Event(EventKind.USAGE_LIMIT, "limit:u1"))  # no reset anywhere yet
    assert limits.waiting_until("a") == 10_000.0 + 15 * 60
    assert "no reset time" in alerts[0].text
    # A status line (a subscription login) then names the exact reset: 6 minutes away.
    statusline = Event(EventKind.USAGE, "statusline", resets_at=10_360.0, used_percent=100.0)
    limits.signal("a", statusline)
    assert limits.waiting_until("a") == 10_360.0
    assert [a.kind for a in alerts] == ["limit", "limit_update"]
    assert "now known" in alerts[1].text
    limits.signal("a", screen_hint(10_300.0))  # a time of day is no better than an epoch
    assert limits.waiting_until("a") == 10_360.0
    later = Event(EventKind.USAGE, "statusline", resets_at=10_500.0, used_percent=100.0)
    limits.signal("a", later)  # moves again, quietly: one note per wait
    assert limits.waiting_until("a") == 10_500.0
    assert [a.kind for a in alerts] == ["limit", "limit_update"]
    fresh, _, _ = watch(tmp_path)  # a restarted runner keeps both the time and the note's flag
    assert fresh.waiting_until("a") == 10_500.0 and fresh.waits["a"].updated
    clock[0] = 10_506.0
    limits.tick()
    assert len(limits.queue.queued("a")) == 1
