"""What a store outage looks like to the runner's long-lived loops, and how they ride it out.

A shared Postgres can go away (a restart, a failover, a network blip) while the runner goes on:
the agents keep working in tmux and must be steerable again as soon as the database is back,
without a person restarting anything. So every core loop that calls the store treats a store
error as a pause, not a death: :func:`retrying` calls again with exponential backoff (tenacity),
short enough that a loop is back within a few seconds of the database, and stops at once when
the runner stops. Anything that is not a store error still ends the loop (and the runner: a
bug must be loud, not retried forever).

Imports only :mod:`bridge.aio` (a leaf); psycopg is looked at only when it is already loaded (a
single box on SQLite never imports it).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_exponential_jitter,
)

from bridge.aio import wait_event
from bridge.store.fence import Fenced

log = logging.getLogger("agentbridge.store")

T = TypeVar("T")

#: First and longest pause between two attempts while the store is away. The longest stays well
#: under the 10 s a runner may stay deaf once the database is back.
BACKOFF_S = 0.25
BACKOFF_MAX_S = 3.0


def is_store_error(err: BaseException) -> bool:
    """A database that is unreachable, restarting or busy: worth another try later (either
        engine). A statement the database refuses (a constraint, a syntax error) is not: retrying
        would only hide a bug. A write the placement fence refused (:mod:`bridge.store.fence`)
    counts: the refusal has the runner re-read the placements at once and the agent leaves its
    fleet, so the loop that tried it goes on with its other agents instead of ending."""
    if isinstance(err, sqlite3.OperationalError | Fenced):
        return True  # Fenced: retried only until the runner has dropped the agent (moved)
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(
        err, psycopg.OperationalError | psycopg.InterfaceError
    )


def _log_retry(what: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        err = state.outcome.exception() if state.outcome else None
        log.warning(
            "store: %s failed (%s: %s); retry %d in %.1f s",
            what,
            type(err).__name__,
            str(err).strip().splitlines()[0] if err and str(err).strip() else "",
            state.attempt_number,
            state.upcoming_sleep,
        )

    return before_sleep


async def retrying(
    call: Callable[[], Awaitable[T]],
    what: str,
    stop: asyncio.Event | None = None,
) -> T:
    """``await call()`` until it returns, pausing with backoff after each store error.

    With ``stop`` given, setting it ends a pause at once and the last store error is raised
    (the loop is being stopped anyway); anything else that ``call`` raises is raised at once."""

    async def pause(seconds: float) -> None:
        if stop is None:
            await asyncio.sleep(seconds)
        else:
            await wait_event(stop, seconds)

    attempts = 0
    async for attempt in AsyncRetrying(
        retry=retry_if_exception(is_store_error),
        wait=wait_exponential_jitter(multiplier=BACKOFF_S, max=BACKOFF_MAX_S, jitter=BACKOFF_S),
        stop=lambda _state: stop is not None and stop.is_set(),
        sleep=pause,
        before_sleep=_log_retry(what),
        reraise=True,
    ):
        with attempt:
            attempts = attempt.retry_state.attempt_number
            result = await call()
    if attempts > 1:
        log.info("store: %s works again (after %d attempts)", what, attempts)
    return result


async def in_thread_retrying(
    fn: Callable[[], T], what: str, stop: asyncio.Event | None = None
) -> T:
    """:func:`retrying` around ``asyncio.to_thread(fn)``: a store call off the event loop."""
    return await retrying(lambda: asyncio.to_thread(fn), what, stop)
