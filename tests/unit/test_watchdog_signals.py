"""The runtimes' usage-limit signals (payloads from docs/cli-signals.md) and the limit watch."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bridge.config.watchdog import WatchdogConfig
from bridge.lifecycle.activity import Activity, ActivityTracker
from bridge.lifecycle.limits import LimitWatch
from bridge.lifecycle.notice import Alert
from bridge.store.db import Store
from bridge.store.queue import Kind, PromptQueue
from runtimes import get_runtime
from runtimes.events import Event, EventKind
from runtimes.limits import clock_after

CLAUDE = get_runtime("claude")
CODEX = get_runtime("codex")


def line(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_claude_api_error_record_is_a_limit() -> None:
    record = {
        "type": "assistant",
        "uuid": "u1",
        "message": {
            "model": "<synthetic>",
            "content": [{"type": "text", "text": "API Error: 429"}],
        },
        "isApiErrorMessage": True,
        "apiErrorStatus": 429,
        "error": "rate_limit",
    }
    kinds = [e.kind for e in CLAUDE.parse_line(line(record), 0, "t").events]
    assert EventKind.USAGE_LIMIT in kinds and EventKind.ASSISTANT_TEXT in kinds


def test_claude_stop_failure_and_status_line_and_pane() -> None:
    (limit,) = CLAUDE.hook_events("StopFailure", {"error": "rate_limit", "prompt_id": "p"})
    assert limit.kind is EventKind.USAGE_LIMIT and limit.resets_at is None
    assert CLAUDE.hook_events("StopFailure", {"error": "server_error"}) == ()
    reset = time.time() + 3600
    payload = {"rate_limits": {"five_hour": {"used_percentage": 91, "resets_at": reset}}}
    (usage,) = CLAUDE.hook_events("statusline", payload)
    assert usage.kind is EventKind.USAGE and usage.used_percent == 91
    screen = "✻ 5-hour limit reached · retrying in 7s (8:58am) · attempt 5/10"
    (hint,) = CLAUDE.screen_events(screen, time.time())
    assert hint.kind is EventKind.USAGE and hint.resets_at is not None


def test_codex_token_count_and_task_complete_and_pane() -> None:
    token = {
        "type": "event_msg",
        "payload": {
            "type": "token_count",
            "info": None,
            "rate_limits": {
                "primary": {"used_percent": 100.0, "window_minutes": 300, "resets_at": 1795855640},
                "secondary": {"used_percent": 25.0, "resets_at": 1796460320},
            },
        },
    }
    (limit,) = CODEX.parse_line(line(token), 0, "r").events
    assert limit.kind is EventKind.USAGE_LIMIT and limit.resets_at == 1795855640
    done = {
        "type": "event_msg",
        "payload": {
            "type": "task_complete",
            "turn_id": "t",
            "last_agent_message": None,
            "error": {
                "message": "… try again at 8:47 AM.",
                "codex_error_info": "usage_limit_exceeded",
            },
            "completed_at": 1795855520,
        },
    }
    kinds = [e.kind for e in CODEX.parse_line(line(done), 10, "r").events]
    assert kinds == [EventKind.USAGE_LIMIT, EventKind.TURN_END]
    pane = "■ You’ve hit your usage limit. Upgrade to Pro (...) or try again at 8:47 AM."
    (from_pane,) = CODEX.screen_events(pane, time.time())
    assert from_pane.resets_at is not None


def test_clock_after_is_the_next_occurrence() -> None:
    now = time.time()
    at = clock_after("try again at 8:47 AM", now)
    assert at is not None and now - 60 <= at < now + 86400


def watch(tmp_path: Path, cfg: WatchdogConfig) -> tuple[LimitWatch, list[Alert], list[float]]:
    store = Store(tmp_path / "s.db")
    tracker = ActivityTracker()
    tracker.get("a").state = Activity.WORKING
    clock = [1000.0]
    alerts: list[Alert] = []
    limits = LimitWatch(
        store, tracker, PromptQueue(store), lambda _s: cfg, alerts.append, clock=lambda: clock[0]
    )
    return limits, alerts, clock


def test_one_post_per_limit_continue_at_reset_and_a_second_wait(tmp_path: Path) -> None:
    cfg = WatchdogConfig(limit_grace_seconds=5, limit_fallback_minutes=1)
    limits, alerts, clock = watch(tmp_path, cfg)
    limit = Event(EventKind.USAGE_LIMIT, "x")
    limits.signal("a", limit)
    limits.signal("a", Event(EventKind.USAGE_LIMIT, "y"))  # the hook after the record
    assert [a.kind for a in alerts] == ["limit"]
    assert limits.tracker.get("a").state is Activity.LIMITED
    assert limits.waiting_until("a") == 1060.0
    clock[0] = 1064.0
    limits.tick()
    assert not limits.queue.queued("a")
    clock[0] = 1066.0
    limits.tick()
    (item,) = limits.queue.queued("a")
    assert item.kind is Kind.CONTINUE and item.text == "continue"
    assert limits.tracker.get("a").state is Activity.IDLE
    limits.tracker.get("a").state = Activity.WORKING
    limits.signal("a", limit)  # the continue hit the limit again: doubled fallback
    assert [a.kind for a in alerts] == ["limit", "limit_again"]
    assert limits.waiting_until("a") == 1066.0 + 120


def test_a_stale_reset_is_ignored_and_a_warning_is_posted_once(tmp_path: Path) -> None:
    cfg = WatchdogConfig(limit_warn_percent=80)
    limits, alerts, _ = watch(tmp_path, cfg)
    limits.signal("a", Event(EventKind.USAGE_LIMIT, "old", resets_at=900.0))
    assert not alerts
    for _ in range(3):
        limits.signal("a", Event(EventKind.USAGE, "u", used_percent=85, resets_at=5000.0))
    assert [a.kind for a in alerts] == ["limit_warning"]
