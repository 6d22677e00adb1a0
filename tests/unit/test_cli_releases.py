"""Issue 21 item 5, the CLIs of today: what Claude Code 2.1.337 and Codex 0.171.0 changed.

- Claude's ``Interrupt`` hook (2.1.335+) becomes ``INTERRUPTED`` (who stopped the turn), ends
  the turn in the activity tracker and leaves an "interrupted by ..." status line; it is
  registered only for a binary that has it (2.1.332 shows a blocking settings warning);
- the status line's ``used_percentage`` is never read: both payload shapes (2.1.332: of the
  full window, 2.1.337: of the auto-compact window) give the same full-window context size;
- the auto-compact offer is held back by an ``autoCompactWindow`` that keeps the user's own;
- a Codex plan with only a weekly window is read, and its warning names the window.

Payloads are real: ``tests/fixtures/claude-2.1.337/`` (see docs/cli-signals.md, section f).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from bridge.channel.turnstatus import TurnStatus, interrupted_text
from bridge.config.watchdog import WatchdogConfig
from bridge.doctor.basics import version_check
from bridge.lifecycle.activity import Activity, ActivityTracker
from bridge.lifecycle.limits import LimitWatch
from bridge.lifecycle.notice import Alert
from bridge.store.db import Store
from bridge.store.queue import PromptQueue
from runtimes import LaunchContext, get_runtime
from runtimes.claude import ClaudeRuntime
from runtimes.events import Event, EventKind
from tests.unit.test_turnstatus_lazy import Recorder, _settled

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude-2.1.337"
CLAUDE = get_runtime("claude")
CODEX = get_runtime("codex")


def fixture(name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / name).read_text())
    assert isinstance(data, dict)
    return data


# -- Interrupt ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["hook-interrupt-before-reply.json", "hook-interrupt-during-tool.json"]
)
def test_the_interrupt_hook_says_who_stopped_the_turn(name: str) -> None:
    payload = fixture(name)
    (event,) = CLAUDE.hook_events("Interrupt", payload)
    assert event.kind is EventKind.INTERRUPTED
    assert event.meta == {"source": "user", "reason": "stop", "via": "terminal"}
    assert event.id == f"interrupt:{payload['prompt_id']}"
    assert not event.mirrored


def test_an_interrupt_ends_the_turn_whatever_it_was_doing() -> None:
    tracker = ActivityTracker()
    (event,) = CLAUDE.hook_events("Interrupt", fixture("hook-interrupt-during-tool.json"))
    tracker.hook("a", "UserPromptSubmit", {"prompt": "x"})
    tracker.event("a", event)
    agent = tracker.get("a")
    assert agent.state is Activity.IDLE
    assert agent.interruption == {"source": "user", "reason": "stop", "via": "terminal"}

    tracker.hook("a", "UserPromptSubmit", {"prompt": "y"})  # a new turn forgets it
    assert tracker.get("a").interruption is None
    tracker.asking("a", "approval", None)
    assert agent.state is Activity.WAITING_INPUT
    denied = Event(EventKind.INTERRUPTED, "i2", meta={"source": "system", "reason": "rewind"})
    tracker.event("a", denied)
    assert agent.state is Activity.IDLE and agent.waiting_for is None
    assert agent.interruption == {"source": "system", "reason": "rewind", "via": None}


def test_the_transcript_marker_is_the_fallback_and_the_hook_adds_who() -> None:
    """2.1.332 never fires the hook; on 2.1.337 the marker may come first."""
    tracker = ActivityTracker()
    tracker.hook("a", "UserPromptSubmit", {"prompt": "x"})
    marker = (FIXTURES / "transcript-lines.jsonl").read_bytes().splitlines()[1]
    (aborted,) = CLAUDE.parse_line(marker, 0, "t").events
    tracker.event("a", aborted)
    assert tracker.get("a").state is Activity.IDLE
    assert tracker.get("a").interruption == {"source": None, "reason": None, "via": None}
    (hook,) = CLAUDE.hook_events("Interrupt", fixture("hook-interrupt-during-tool.json"))
    tracker.event("a", hook)
    assert tracker.get("a").interruption == hook.meta


def _status(backend: Recorder, tracker: ActivityTracker) -> TurnStatus:
    status = TurnStatus(
        backend,  # type: ignore[arg-type]
        lambda slug: "#c",
        lambda slug: None,
        min_interval=0,
        settle=0,
        lazy=3600,
    )
    status.interrupt_of = lambda slug: tracker.get(slug).interruption
    tracker.listeners.append(status.changed)
    tracker.interruption_listeners.append(status.refresh)
    return status


def test_the_hook_after_the_marker_edits_the_line_to_say_who() -> None:
    """Seen on 2.1.337 through the runner: the transcript's marker ended the turn, the line was
    posted, then the hook named the user."""
    backend = Recorder()
    marker = (FIXTURES / "transcript-lines.jsonl").read_bytes().splitlines()[1]
    (aborted,) = CLAUDE.parse_line(marker, 0, "t").events
    (hook,) = CLAUDE.hook_events("Interrupt", fixture("hook-interrupt-during-tool.json"))

    async def scenario() -> None:
        tracker = ActivityTracker()
        status = _status(backend, tracker)
        tracker.hook("a", "UserPromptSubmit", {"prompt": "x"})
        await asyncio.sleep(0)
        tracker.event("a", aborted)
        await _settled(status)
        tracker.event("a", hook)
        await _settled(status)

    asyncio.run(scenario())
    assert backend.calls == [
        ("post", ":octagonal_sign: interrupted"),
        ("update", ":octagonal_sign: interrupted by the user at the terminal"),
    ]


def test_an_interrupted_turn_leaves_a_line_saying_who_stopped_it() -> None:
    """A short turn posts no status line, unless it was interrupted: then it says so (a
    normal turn's end is its answer; an interrupted one has none)."""
    backend = Recorder()
    (hook,) = CLAUDE.hook_events("Interrupt", fixture("hook-interrupt-before-reply.json"))

    async def scenario() -> None:
        tracker = ActivityTracker()
        status = _status(backend, tracker)
        tracker.hook("a", "UserPromptSubmit", {"prompt": "x"})
        await asyncio.sleep(0)
        tracker.event("a", hook)
        await _settled(status)
        tracker.hook("a", "UserPromptSubmit", {"prompt": "y"})
        tracker.hook("a", "Stop", {})
        await _settled(status)

    asyncio.run(scenario())
    assert backend.calls == [("post", ":octagonal_sign: interrupted by the user at the terminal")]


def test_interrupted_texts() -> None:
    assert interrupted_text({"source": None}) == ":octagonal_sign: interrupted"
    assert interrupted_text(
        {"source": "system", "reason": "permission_denied", "via": "client"}
    ) == (
        ":octagonal_sign: interrupted by the system (a hook, a permission check or a service) "
        "through a client (a permission was denied)"
    )
    assert interrupted_text({"source": "session", "reason": "stop"}) == (
        ":octagonal_sign: interrupted by another agent session"
    )


def _fake_claude(tmp_path: Path, version: str) -> str:
    path = tmp_path / f"claude-{version}"
    path.write_text(f"#!/bin/sh\necho '{version} (Claude Code)'\n")
    path.chmod(0o755)
    return str(path)


def _ctx(tmp_path: Path, bin: str, **env: str) -> LaunchContext:
    home = tmp_path / "claude-home"
    return LaunchContext(
        slug="a",
        workdir=tmp_path,
        bin=bin,
        env={"CLAUDE_CONFIG_DIR": str(home), **env},
        hook_command="/ab hook",
    )


@pytest.mark.parametrize(
    ("version", "registered"), [("2.1.337", True), ("2.1.335", True), ("2.1.332", False)]
)
def test_the_interrupt_hook_is_registered_only_where_it_exists(
    tmp_path: Path, version: str, registered: bool
) -> None:
    hooks = ClaudeRuntime().settings(_ctx(tmp_path, _fake_claude(tmp_path, version)))["hooks"]
    assert ("Interrupt" in hooks) is registered
    if registered:
        (entry,) = hooks["Interrupt"]
        # The relay: answers within its 2 s and prints nothing; Claude ignores its output.
        assert entry["hooks"] == [
            {"type": "command", "command": "/ab hook Interrupt", "timeout": 10}
        ]
    unknown = ClaudeRuntime().settings(_ctx(tmp_path, str(tmp_path / "missing")))["hooks"]
    assert "Interrupt" not in unknown, "a version that cannot be read gets no new hook"


# -- the auto-compact offer -----------------------------------------------------------------------


def test_the_auto_compact_offer_is_held_back_with_the_users_own_window(tmp_path: Path) -> None:
    runtime = ClaudeRuntime()
    bin = _fake_claude(tmp_path, "2.1.337")
    assert runtime.settings(_ctx(tmp_path, bin))["autoCompactWindow"] == "auto"
    home = tmp_path / "claude-home"
    home.mkdir()
    (home / "settings.json").write_text(json.dumps({"autoCompactWindow": 600000}))
    assert runtime.settings(_ctx(tmp_path, bin))["autoCompactWindow"] == 600000
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "settings.local.json").write_text('{"autoCompactWindow": "1m"}')
    assert runtime.settings(_ctx(tmp_path, bin))["autoCompactWindow"] == "1m"
    by_env = _ctx(tmp_path, bin, CLAUDE_CODE_AUTO_COMPACT_WINDOW="500000")
    assert "autoCompactWindow" not in runtime.settings(by_env)


# -- the status line's context size ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "percentage"),
    [("statusline-2.1.332-300k.json", 30), ("statusline-300k.json", 75)],
)
def test_the_context_size_never_reads_the_percentage(name: str, percentage: int) -> None:
    """300K of a 1M window: 30 % on 2.1.332, 75 % (of the ~400K auto-compact window) on
    2.1.337; the runner's size is the same full-window 300K for both."""
    payload = fixture(name)
    assert payload["context_window"]["used_percentage"] == percentage
    events = CLAUDE.hook_events("statusline", payload)
    (context,) = [e for e in events if e.kind is EventKind.CONTEXT_SIZE]
    assert (context.tokens, context.context_window) == (300000, 1000000)
    tracker = ActivityTracker()
    tracker.event("a", context)
    assert (tracker.get("a").context_tokens, tracker.get("a").context_window) == (300000, 1000000)


def test_a_status_line_before_the_first_reply_keeps_the_known_size() -> None:
    payload = fixture("statusline-first.json")
    assert payload["context_window"]["current_usage"] is None
    (context,) = CLAUDE.hook_events("statusline", payload)
    assert (context.tokens, context.context_window) == (None, 1000000)
    tracker = ActivityTracker()
    tracker.get("a").context_tokens = 5000
    tracker.event("a", context)
    assert tracker.get("a").context_tokens == 5000


# -- Codex: a weekly window only ------------------------------------------------------------------


def _token_count(rate_limits: dict[str, Any]) -> bytes:
    line = {
        "timestamp": "2026-12-07T10:00:00.000Z",
        "type": "event_msg",
        "payload": {"type": "token_count", "info": None, "rate_limits": rate_limits},
    }
    return json.dumps(line).encode()


WEEK = {"used_percent": 100.0, "window_minutes": 10080, "resets_at": 1796460320}


@pytest.mark.parametrize(
    "rate_limits",
    [
        {"limit_id": "codex", "primary": None, "secondary": WEEK, "plan_type": "plus"},
        {"limit_id": "codex", "primary": WEEK},
        {"secondary": WEEK},
    ],
    ids=["primary-null", "secondary-missing", "only-secondary"],
)
def test_a_codex_plan_with_only_a_weekly_window(rate_limits: dict[str, Any]) -> None:
    (event,) = CODEX.parse_line(_token_count(rate_limits), 0, "r").events
    assert event.kind is EventKind.USAGE_LIMIT
    assert event.resets_at == 1796460320
    assert event.meta["window_minutes"] == 10080


def test_the_weekly_warning_names_its_window(tmp_path: Path) -> None:
    week = {**WEEK, "used_percent": 85.0}
    (usage,) = CODEX.parse_line(_token_count({"primary": None, "secondary": week}), 0, "r").events
    assert usage.kind is EventKind.USAGE and usage.used_percent == 85.0
    store = Store(tmp_path / "s.db")
    tracker = ActivityTracker()
    alerts: list[Alert] = []
    cfg = WatchdogConfig(limit_warn_percent=80)
    watch = LimitWatch(
        store, tracker, PromptQueue(store), lambda _s: cfg, alerts.append, clock=lambda: 1.79e9
    )
    watch.signal("a", usage)
    (alert,) = alerts
    assert "85% of the account's weekly usage window" in alert.text


# -- doctor ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("printed", ["2.1.337 (Claude Code)", "2.1.332 (Claude Code)"])
def test_doctor_calls_both_claude_pins_tested(printed: str) -> None:
    check = version_check("web", "claude", printed)
    assert check.detail == f"claude {printed.split()[0]}: tested" and not check.warning
