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

And two turn signals (fixtures ``tests/fixtures/claude-2.1.337/``):

- ``Interrupt`` (2.1.335+) fires once when an interrupt ended the main turn, with ``source``,
  ``reason`` and ``via``: :data:`EventKind.INTERRUPTED`. No ``Stop`` follows. Older releases
  never fire it; their fallback is the transcript's ``[Request interrupted by user...]``
  (which 2.1.332 and 2.1.337 write only when the turn had begun answering: an Escape before
  the first reply puts the prompt back in the composer and writes nothing).
- The status line's ``context_window`` gives the context size. Its ``used_percentage`` is
  *not* read: up to 2.1.332 it counted against the whole window, since 2.1.336 against the
  auto-compact window (300K tokens of a 1M window read 30 on 2.1.332 and 75 on 2.1.337). The
  tokens are ``current_usage``'s input counts and the window ``context_window_size``: the
  full-window meaning on every release (``total_input_tokens`` equals that sum in both, but
  its name says "total", so it is not relied on).
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


#: The ``current_usage`` counts that are input (what the next request sends again).
_INPUT_COUNTS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def context_event(payload: dict[str, Any]) -> Event | None:
    """The status line's context size against the full window (never ``used_percentage``)."""
    window = as_dict(payload.get("context_window"))
    if window is None:
        return None
    size = _count(window.get("context_window_size")) or None
    usage = as_dict(window.get("current_usage"))
    # ``current_usage`` is null before the first reply and right after /compact: the size is
    # then unknown (None), and the transcript's compaction record says what it became.
    tokens = sum(_count(usage.get(k)) or 0 for k in _INPUT_COUNTS) if usage is not None else None
    if tokens is None and size is None:
        return None
    return Event(EventKind.CONTEXT_SIZE, "statusline:context", tokens=tokens, context_window=size)


def interrupt_event(payload: dict[str, Any]) -> Event:
    """``Interrupt``: the turn really stopped; who stopped it and how, as the CLI says."""

    def field(name: str) -> str | None:
        value = payload.get(name)
        return value if isinstance(value, str) and value else None

    key = field("prompt_id") or field("session_id") or ""
    meta = {"source": field("source"), "reason": field("reason"), "via": field("via")}
    return Event(EventKind.INTERRUPTED, f"interrupt:{key}", meta=meta)


def _usage_events(payload: dict[str, Any]) -> tuple[Event, ...]:
    limits = as_dict(payload.get("rate_limits"))
    if limits is None:
        return ()
    windows = []
    names = []
    for name, raw in limits.items():
        window = as_dict(raw) or {}
        windows.append((percent(window.get("used_percentage")), epoch(window.get("resets_at"))))
        names.append(name)
    worst = worst_window(windows)
    if worst is None:
        return ()
    minutes = next(
        (_WINDOW_MINUTES.get(n) for n, w in zip(names, windows, strict=True) if w == worst), None
    )
    meta = {"window_minutes": minutes} if minutes else {}
    # At 100 % the status line reports the limit Claude is hitting, not a stopped turn:
    # Claude retries or fails on its own, and says so with StopFailure.
    return (
        Event(EventKind.USAGE, "statusline", resets_at=worst[1], used_percent=worst[0], meta=meta),
    )


#: The status line's ``rate_limits`` windows, by name.
_WINDOW_MINUTES = {"five_hour": 300, "seven_day": 10080}


def hook_events(event: str, payload: dict[str, Any]) -> tuple[Event, ...]:
    if event == "StopFailure":
        return stop_failure_limit(event, payload)
    if event == "Interrupt":
        return (interrupt_event(payload),)
    if event == "statusline":
        context = context_event(payload)
        return (*((context,) if context else ()), *_usage_events(payload))
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
