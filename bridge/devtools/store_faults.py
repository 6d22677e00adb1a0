"""Test-only: make a store fail on a random (seeded) share of its calls, as a flaky database
does, on either engine.

Why: "nothing lost, nothing duplicated" must hold when the database errs, not only when the
runner is killed. A failed call raises what the real engine raises when its connection drops
(``sqlite3.OperationalError``, ``psycopg.OperationalError``), at one of three points:

- before a ``query()`` or a transaction starts (nothing was done);
- at the end of a transaction's body, before its commit (everything in it is rolled back; a
  joined transaction, :meth:`bridge.store.pg.PgStore.join`, is marked failed, as a dropped
  connection would leave it);
- when a held transaction is opened (``PgStore.claimed``, the routed-event drain).

Not simulated: a commit that succeeded but whose answer was lost (the outcome of such a commit
is ambiguous to every client; the dedupe keys cover it, but it is not what this tests).

Enabled in a runner only by :data:`ENV` (``AGENTBRIDGE_TEST_STORE_FAULTS=SHARE:SEED``, e.g.
``0.05:7``), which exists for the test suite and is documented as test-only; tests in one
process call :func:`install` directly.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

ENV = "AGENTBRIDGE_TEST_STORE_FAULTS"


log = logging.getLogger("agentbridge")


class Faults:
    """The dice, shared by every call of one store (thread-safe); counts what it injected."""

    def __init__(self, share: float, seed: int, error: type[Exception]) -> None:
        self.share = share
        self.error = error
        self.enabled = True
        self.injected = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def roll(self, where: str) -> None:
        with self._lock:
            if not self.enabled or self._rng.random() >= self.share:
                return
            self.injected += 1
        raise self.error(f"server closed the connection unexpectedly (injected at {where})")


def parse(spec: str) -> tuple[float, int]:
    """``SHARE:SEED`` (``0.05:7``) -> (0.05, 7); a bare share uses seed 0."""
    share, _, seed = spec.partition(":")
    value = float(share)
    if not 0 <= value < 1:
        raise ValueError(f"{ENV}: the share must be in [0, 1), got {share!r}")
    return value, int(seed or 0)


def error_for(store: Any) -> type[Exception]:
    if getattr(store, "engine", "sqlite") == "postgres":
        import psycopg

        return psycopg.OperationalError
    return sqlite3.OperationalError


def install(store: Any, share: float, seed: int) -> Faults:
    """Make ``store``'s ``tx()``, ``query()`` (and ``claimed()``) fail on ``share`` of calls."""
    faults = Faults(share, seed, error_for(store))
    inner_tx, inner_query = store.tx, store.query

    @contextmanager
    def tx() -> Iterator[Any]:
        faults.roll("begin")
        with inner_tx() as db:
            yield db
            try:
                faults.roll("commit")
            except Exception:
                joined = getattr(store, "joined", None)
                held = joined.get() if joined is not None else None
                if held is not None:
                    held.failed = True
                raise

    def query(sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        faults.roll("query")
        result: list[Any] = inner_query(sql, params)
        return result

    store.tx, store.query = tx, query
    if hasattr(store, "claimed"):
        inner_claimed = store.claimed

        @contextmanager
        def claimed() -> Iterator[Any]:
            faults.roll("claim")
            with inner_claimed() as conn:
                yield conn

        store.claimed = claimed
    return faults


def from_env(store: Any, environ: Mapping[str, str]) -> Faults | None:
    """The faults :data:`ENV` asks for, installed on ``store`` and disarmed (the runner arms
    them once it has started); None without it (every real run)."""
    spec = environ.get(ENV)
    if not spec:
        return None
    share, seed = parse(spec)
    log.warning("runner: TEST ONLY: %s of store calls fail (%s)", share, ENV)
    faults = install(store, share, seed)
    faults.enabled = False
    return faults
