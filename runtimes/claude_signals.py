"""Claude Code usage limits and usage reports, from its hooks and its screen.

Observed on 2.1.328 and 2.1.332 (docs/cli-signals.md, section a):

- When Claude gives up at a limit, ``StopFailure`` fires with ``error: rate_limit`` (and no reset
  time), alongside the transcript's API-error record (:mod:`runtimes.claude_parse`).
- While it retries by itself (a 429 without ``retry-after``) the screen shows
  ``✻ 5-hour limit reached · retrying in 7s (8:58am) · attempt 5/10``: the clock time is the
  reset. That line is a hint, not a limit: Claude may still get through on a later attempt.
- The status line's stdin carries ``rate_limits: {five_hour: {used_percentage, resets_at},
  seven_day: {...}}`` with a subscription login only (from the binary's strings; an API key
  gives none, so this is unverified).
"""

from __future__ import annotations

import re
from typing import Any

from runtimes.events import Event, EventKind
from runtimes.limits import (
    CLOCK,
    LIVE,
    clock_after,
    epoch,
    percent,
    stop_failure_limit,
    worst_window,
)
from runtimes.parse_util import as_dict

RETRY_LINE = re.compile(r"limit reached\s*·\s*retrying in[^(\n]*\(([^)\n]*)\)", re.I)


def hook_events(event: str, payload: dict[str, Any]) -> tuple[Event, ...]:
    if event == "StopFailure":
        return stop_failure_limit(event, payload)
    if event == "statusline":
        limits = as_dict(payload.get("rate_limits"))
        if limits is None:
            return ()
        windows = []
        for raw in limits.values():
            window = as_dict(raw) or {}
            windows.append((percent(window.get("used_percentage")), epoch(window.get("resets_at"))))
        worst = worst_window(windows)
        if worst is None:
            return ()
        # At 100 % the status line reports the limit Claude is hitting, not a stopped turn:
        # Claude retries or fails on its own, and says so with StopFailure.
        return (Event(EventKind.USAGE, "statusline", resets_at=worst[1], used_percent=worst[0]),)
    return ()


def screen_events(screen: str, now: float) -> tuple[Event, ...]:
    """The retry line is ``live`` (:data:`runtimes.limits.LIVE`): Claude draws it in its spinner
    slot only while it retries, so it is true whenever it is on screen, also at the first look
    at a turn that hit the limit at its first request (it shows from the first second)."""
    match = RETRY_LINE.search(screen)
    if match is None:
        return ()
    reset = clock_after(match.group(1), now)
    return (
        Event(
            EventKind.USAGE,
            f"pane:{match.group(1)}",
            resets_at=reset,
            used_percent=100.0,
            meta={**CLOCK, **LIVE},
        ),
    )
