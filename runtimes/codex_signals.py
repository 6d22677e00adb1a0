"""Codex usage limits and usage reports, from its rollout, its screen and its hooks.

Observed on 0.136.0, 0.169.0 and 0.171.0 (docs/cli-signals.md, section b): at a limit Codex
makes one request, writes a ``token_count`` whose ``rate_limits`` carry the 429's headers
(``used_percent: 100`` and ``resets_at``), then a ``task_complete`` that has an ``error`` with
``codex_error_info: usage_limit_exceeded`` (0.169+; 0.136.0 writes no error), and shows
``■ You’ve hit your usage limit. ... try again at 8:47 AM.`` on screen. It fires no hook at a
limit (no ``StopFailure`` in these releases), so the rollout and the screen are the signals.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from runtimes.events import Event, EventKind
from runtimes.limits import CLOCK, clock_after, epoch, percent, worst_window
from runtimes.parse_util import JsonObject, as_dict, as_str

#: The screen line of a limit (every observed release); the clock time is ``resets_at``. The
#: line wraps at the pane's width, also between "try again" and "at" (0.171.0, 160 columns).
LIMIT_LINE = re.compile(
    r"hit your usage limit.*?try\s+again\s+at\s+([^.\n]*\d[^.\n]*)", re.I | re.S
)


def _window(raw: Any) -> tuple[float | None, float | None]:
    window = as_dict(raw) or {}
    return percent(window.get("used_percent")), epoch(window.get("resets_at"))


def rate_limit_event(payload: JsonObject, line_id: str) -> Event | None:
    """``token_count.rate_limits``: USAGE_LIMIT when a window is used up, else USAGE.

    Either window may be missing or null: plans have carried only a weekly limit since mid-2026
    (one window of 10080 minutes, under ``primary`` or ``secondary``). ``meta.window_minutes``
    is the length of the window reported, when the line names it."""
    limits = as_dict(payload.get("rate_limits"))
    if limits is None:
        return None
    raw = [as_dict(limits.get(key)) or {} for key in ("primary", "secondary")]
    windows = [_window(w) for w in raw]
    worst = worst_window(windows)
    if worst is None:
        return None
    used, reset = worst
    kind = EventKind.USAGE_LIMIT if used >= 100 else EventKind.USAGE
    meta: dict[str, Any] = {}
    for window, (w_used, w_reset) in zip(raw, windows, strict=True):
        minutes = percent(window.get("window_minutes"))
        if w_used == used and (w_reset == reset or used < 100) and minutes:
            meta["window_minutes"] = int(minutes)
            break
    return Event(kind, f"usage:{line_id}", resets_at=reset, used_percent=used, meta=meta)


def task_error_event(payload: JsonObject, line_id: str) -> Event | None:
    """``task_complete.error`` with ``usage_limit_exceeded``; the reset is the clock time in the
    message, taken relative to the record's ``completed_at``."""
    error = as_dict(payload.get("error"))
    if error is None or error.get("codex_error_info") != "usage_limit_exceeded":
        return None
    message = as_str(error.get("message")) or ""
    done = epoch(payload.get("completed_at"))
    reset = clock_after(message, done) if done is not None else None
    return Event(
        EventKind.USAGE_LIMIT, f"limit:{line_id}", text=message, resets_at=reset, meta=CLOCK
    )


def screen_events(screen: str, now: float) -> tuple[Event, ...]:
    """The limit line on screen (the only limit text 0.136.0 gives besides ``rate_limits``)."""
    match = LIMIT_LINE.search(screen)
    if match is None:
        return ()
    reset = clock_after(match.group(1), now)
    line = " ".join(match.group(0).split())
    event = Event(EventKind.USAGE_LIMIT, f"pane:{line}", text=line, resets_at=reset)
    return (replace(event, meta=dict(CLOCK)),)
