"""Helpers for the usage-limit and usage-report signals both CLIs give (docs/cli-signals.md).

Pure functions over text and JSON, shared by the runtime-specific parsers: a clock time on the
screen ("try again at 8:47 AM", "(8:58am)") resolved to epoch seconds, and rate-limit windows
(Codex's ``rate_limits``, Claude's status-line ``rate_limits``) folded to one ``(used_percent,
resets_at)`` pair.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from runtimes.events import Event, EventKind

#: ``Event.meta`` of a reset read from a time of day (minute precision, local time).
CLOCK = {"reset_source": "clock"}
#: ``Event.meta`` of a screen event that describes the screen's present state (a status line
#: the CLI redraws while the condition lasts), not a line of history that stays in scrollback:
#: the runner reads it at every look, the first one included. Other screen events count only
#: when they were not on the previous capture (an old turn's limit line is not news).
LIVE = {"live": True}

_CLOCK = re.compile(r"(\d{1,2}):(\d{2})\s*([AaPp])\.?[Mm]\.?")


def clock_after(text: str, now: float) -> float | None:
    """The first ``H:MM AM/PM`` in ``text`` as the next such local time at or after ``now``
    (minus a minute of slack: the CLI printed it a moment ago, rounded down to the minute).

    The CLIs print the reset in the machine's local time with no date; a reset is always in the
    future, and usage windows are at most a few hours, so the next occurrence is the one meant.
    """
    match = _CLOCK.search(text)
    if match is None:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    if not (1 <= hour <= 12 and minute < 60):
        return None
    hour = hour % 12 + (12 if match.group(3).lower() == "p" else 0)
    base = datetime.fromtimestamp(now)
    when = base.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if when.timestamp() < now - 60:
        when += timedelta(days=1)
    return when.timestamp()


def epoch(value: Any) -> float | None:
    """Epoch seconds from a number (seconds, or milliseconds when huge) or an ISO string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and value > 0:
        return float(value) / 1000 if value > 1e12 else float(value)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def percent(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def worst_window(
    windows: list[tuple[float | None, float | None]],
) -> tuple[float, float | None] | None:
    """The most used window ``(used_percent, resets_at)``; among full ones the latest reset
    (the account is usable again only when every exhausted window has reset)."""
    known = [(used, reset) for used, reset in windows if used is not None]
    if not known:
        return None
    full = [(used, reset) for used, reset in known if used >= 100]
    if full:
        resets = [r for _, r in full if r is not None]
        return max(u for u, _ in full), (max(resets) if resets else None)
    used, reset = max(known, key=lambda w: w[0])
    return used, reset


def stop_failure_limit(event: str, payload: dict[str, Any]) -> tuple[Event, ...]:
    """A ``StopFailure`` hook with ``error: rate_limit``: the turn ended at a usage limit (the
    payload names no reset time)."""
    if event != "StopFailure" or payload.get("error") != "rate_limit":
        return ()
    text = payload.get("last_assistant_message")
    key = payload.get("prompt_id") or payload.get("session_id") or ""
    return (
        Event(
            EventKind.USAGE_LIMIT, f"hook-limit:{key}", text=text if isinstance(text, str) else ""
        ),
    )
