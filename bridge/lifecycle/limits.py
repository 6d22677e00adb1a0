"""Usage limits: notice them once, hold the agent, continue it at the reset.

Inputs are the runtimes' common events (``USAGE_LIMIT``, ``USAGE``) from whatever signal the CLI
gives: a transcript record, a hook, a screen line. One limit usually arrives as several of them
(Claude: API-error record and ``StopFailure``; Codex: ``token_count`` then ``task_complete``),
so only the first opens a wait and posts; the rest refine the reset time, preferring an exact
epoch (``reported``) over a time of day read off the screen (``clock``) over a guess.

When nothing names the reset (Claude's ``StopFailure`` and API-error record do not), the reset
is the latest screen hint (Claude's ``limit reached · retrying in 7s (8:58am)``, read at every
look at the screen, the first one of a turn included), else ``limit_fallback_minutes`` from now,
doubled for each further wait in a row, up to ``limit_fallback_max_minutes``. A reset read as a
time of day runs to the end of that minute. Every source is read every time: a better reset that
arrives after the wait opened (a status line's ``rate_limits``, a screen line) moves the wait,
and the channel gets one short note about it per wait. At the reset plus
``limit_grace_seconds`` the continue prompt is queued (delivered before anything held; queued
before the wait records it, so a crash in between queues it again, deduplicated); if the
continued turn hits the limit again, the wait starts over with one short note. The episode ends
when a continued turn ends normally.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from functools import partial

from bridge.config.watchdog import WatchdogConfig
from bridge.lifecycle.activity import DEAD, Activity, ActivityTracker
from bridge.lifecycle.notice import Alert, AlertSink
from bridge.store import limits as stored
from bridge.store.db import Store
from bridge.store.later import Later
from bridge.store.limits import LimitWait
from bridge.store.queue import Kind, PromptQueue
from runtimes.events import Event, EventKind

log = logging.getLogger("agentbridge.limits")

#: How much to trust a reset time, by where it came from.
RANK = {"fallback": 0, "clock": 1, "reported": 2}


def when(at: float, now: float) -> str:
    """``14:05 CET (in 4m 30s)``: a local time of day (with the date when not today)."""
    local = datetime.fromtimestamp(at).astimezone()
    today = datetime.fromtimestamp(now).astimezone().date()
    clock = local.strftime("%H:%M %Z" if local.date() == today else "%a %d %b %H:%M %Z")
    return f"{clock} (in {duration(at - now)})"


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def window_name(minutes: object) -> str:
    """``weekly usage window`` for a USAGE event's ``meta.window_minutes`` (plans may carry only
    a weekly limit); ``usage window`` when the CLI did not say which."""
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0:
        return "usage window"
    if minutes == 10080:
        return "weekly usage window"
    if minutes % 1440 == 0:
        return f"{minutes // 1440}-day usage window"
    if minutes % 60 == 0:
        return f"{minutes // 60}-hour usage window"
    return f"{minutes}-minute usage window"


#: A reset read as a time of day has minute precision: the wait lasts to the end of that
#: minute, so the continue prompt never arrives before the reset (and meets the limit again).
CLOCK_PRECISION_S = 60.0


def source_of(event: Event) -> str:
    """Where ``event``'s reset comes from (:data:`RANK`): ``clock`` or ``reported``."""
    return "clock" if event.meta.get("reset_source") == "clock" else "reported"


def latest(event: Event) -> float | None:
    """The latest moment ``event`` allows for its reset (the end of a time of day's minute)."""
    if event.resets_at is None:
        return None
    return event.resets_at + (CLOCK_PRECISION_S if source_of(event) == "clock" else 0.0)


class LimitWatch:
    def __init__(
        self,
        store: Store,
        tracker: ActivityTracker,
        queue: PromptQueue,
        settings: Callable[[str], WatchdogConfig | None],
        alert: AlertSink,
        *,
        wake: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        later: Later | None = None,
    ) -> None:
        self.store = store
        self.later = later or Later()
        """Where the store writes go: signals come on the event loop, which must never wait
        on the database (:mod:`bridge.store.later`: in order, off the loop, retried)."""
        self.tracker = tracker
        self.queue = queue
        self.settings = settings
        self.alert = alert
        self.wake = wake
        self.clock = clock
        self.waits: dict[str, LimitWait] = stored.load_all(store)
        self.hints: dict[str, float] = {}
        self.warned: dict[str, int] = {}
        for slug, wait in self.waits.items():
            if wait.continued_at is None:
                tracker.held.add(slug)

    def waiting_until(self, slug: str) -> float | None:
        wait = self.waits.get(slug)
        return wait.resets_at if wait is not None and wait.continued_at is None else None

    # -- signals ----------------------------------------------------------------------------

    def signal(self, slug: str, event: Event) -> None:
        if event.kind is EventKind.USAGE:
            self._usage(slug, event)
        elif event.kind is EventKind.USAGE_LIMIT:
            self._limit(slug, event)

    def _usage(self, slug: str, event: Event) -> None:
        now = self.clock()
        used, reset = event.used_percent, latest(event)
        if used is None:
            return
        if used >= 100:
            if reset is not None and reset > now:
                self.hints[slug] = reset
                wait = self.waits.get(slug)
                if wait is not None and wait.continued_at is None:  # a later, better source
                    self._refine(slug, wait, reset, source_of(event))
            return
        cfg = self.settings(slug)
        if cfg is None or cfg.limit_warn_percent is None or used < cfg.limit_warn_percent:
            return
        window = int(reset // 60) if reset else 0
        if self.warned.get(slug) == window:
            return
        self.warned[slug] = window
        resets = f"; it resets at {when(reset, now)}" if reset else ""
        name = window_name(event.meta.get("window_minutes"))
        self.alert(
            Alert(
                slug,
                "limit_warning",
                f":warning: Usage at {used:.0f}% of the account's {name}{resets}.",
            )
        )

    def _reset(self, slug: str, event: Event, waits: int) -> tuple[float, str]:
        now = self.clock()
        cfg = self.settings(slug) or WatchdogConfig()
        reset = latest(event)
        if reset is not None:
            return reset, source_of(event)
        hint = self.hints.get(slug)
        if hint is not None and hint > now:
            return hint, "clock"
        minutes = min(cfg.limit_fallback_minutes * 2**waits, cfg.limit_fallback_max_minutes)
        return now + minutes * 60, "fallback"

    def _limit(self, slug: str, event: Event) -> None:
        now = self.clock()
        told = latest(event)
        if told is not None and told <= now:
            return  # an old report (a re-read line, a stale screen): that reset has passed
        wait = self.waits.get(slug)
        if wait is not None and wait.continued_at is None:
            reset, source = self._reset(slug, event, wait.waits)
            self._refine(slug, wait, reset, source)
            self.tracker.limited(slug)
            return
        again = wait is not None
        waits = wait.waits + 1 if wait is not None else 0
        reset, source = self._reset(slug, event, waits)
        since = wait.since if wait is not None else now
        self.waits[slug] = wait = LimitWait(since, reset, source, waits)
        self._save(slug, wait)
        self.tracker.limited(slug)
        log.warning("%s: usage limit; continuing at %s (%s)", slug, when(reset, now), source)
        if again:
            text = (
                f":hourglass_flowing_sand: Still limited; waiting again until {when(reset, now)}."
            )
        elif source == "fallback":
            text = (
                ":hourglass_flowing_sand: Usage limit reached. The CLI gave no reset time; "
                f"trying again at {when(reset, now)}, will continue then."
            )
        else:
            text = (
                f":hourglass_flowing_sand: Usage limit reached, resets at {when(reset, now)}; "
                "will continue then."
            )
        self.alert(Alert(slug, "limit_again" if again else "limit", text))

    def _refine(self, slug: str, wait: LimitWait, reset: float, source: str) -> None:
        """A later signal of the same wait: take its reset when it is more trustworthy (an
        exact epoch over a time of day over a guess); the channel hears of a change once."""
        now = self.clock()
        better = RANK[source] > RANK[wait.source] or source == wait.source == "reported"
        if not better or abs(reset - wait.resets_at) < 1:
            return
        before, was = wait.resets_at, wait.source
        tell = not wait.updated and abs(reset - before) >= 60  # what the note said is off
        wait.resets_at, wait.source = reset, source
        wait.updated = wait.updated or tell
        self._save(slug, wait)
        log.info("%s: limit resets at %s (%s)", slug, when(reset, now), source)
        if tell:
            what = "The reset time is now known" if was == "fallback" else "New reset time"
            text = f":hourglass_flowing_sand: {what}: {when(reset, now)}; will continue then."
            self.alert(Alert(slug, "limit_update", text))

    def _save(self, slug: str, wait: LimitWait | None) -> None:
        """Record ``slug``'s wait (a copy: the live one changes) after the store work queued
        before it; only its latest value matters, so a pending save is replaced."""
        saved = replace(wait) if wait is not None else None
        job = partial(stored.save, self.store, slug, saved)
        self.later.put(f"{slug}: saving the limit wait", job, key=("limit", slug))

    # -- time and turns ----------------------------------------------------------------------

    def tick(self) -> None:
        """Queue the continue prompt for every wait whose reset (plus grace) has come."""
        now = self.clock()
        for slug, wait in list(self.waits.items()):
            if wait.continued_at is not None:
                continue
            cfg = self.settings(slug)
            if cfg is None:  # the agent is gone from the config
                self.forget(slug)
                continue
            if now < wait.resets_at + cfg.limit_grace_seconds:
                continue
            if self.tracker.get(slug).state in (*DEAD, Activity.STARTING):
                continue  # it comes back limited (held); continue once it is up
            # Queue first, then record: a crash in between queues again on the next tick (or
            # runner), which the dedupe key makes a no-op; the other order would leave the wait
            # marked continued with no continue prompt, the agent never resumed.
            enqueue = partial(
                self.queue.enqueue,
                slug,
                Kind.CONTINUE,
                cfg.continue_prompt,
                source={"via": "limit"},
                dedupe_key=f"continue:{slug}:{wait.since:.3f}:{wait.waits}",
            )
            self.later.put(
                f"{slug}: queueing the continue prompt", enqueue, lambda _id: self.wake()
            )
            self._save(slug, replace(wait, continued_at=now))
            wait.continued_at = now  # only once recorded: a failed save is retried next tick
            self.tracker.unlimited(slug)
            log.info("%s: usage limit reset; continue prompt queued", slug)

    def changed(self, slug: str, old: Activity, new: Activity) -> None:
        """A continued turn that ends normally ends the episode."""
        wait = self.waits.get(slug)
        ended = old is Activity.WORKING and new is Activity.IDLE
        if wait is not None and wait.continued_at is not None and ended:
            log.info("%s: usage limit over (the continued turn ended)", slug)
            self.forget(slug)

    def forget(self, slug: str) -> None:
        self.waits.pop(slug, None)
        self.hints.pop(slug, None)
        self.tracker.held.discard(slug)
        self._save(slug, None)
