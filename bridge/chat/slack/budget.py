"""Every Web API call waits for its method's budget: Slack's tiers, split among the live hosts.

Slack limits each method per workspace (:mod:`bridge.chat.slack.tiers`), and every runner of
the app spends from the same budget. So each method gets a leaky bucket
(:class:`aiolimiter.AsyncLimiter`) of its tier, and :class:`BudgetedClient` -- the backend's
``AsyncWebClient`` -- takes a slot in it before every call, whoever makes it (the posting code,
slack_bolt's listeners, the Socket Mode client's ``apps.connections.open``, the two calls of
``files_upload_v2``). Rules, and why:

- headroom: a bucket drains :data:`MARGIN` slower than the tier and holds :data:`BURST_SHARE`
  of its burst, so clock and network jitter between taking a slot here and the call reaching
  Slack never turn the last call of a burst into a 429;
- several hosts (``docs/adr/0006-shared-slack-budget.md``): with ``N`` live hosts each runner
  budgets ``1/N`` of every method (:meth:`MethodBudget.share`, called on each heartbeat). A
  bucket this runner had used is rebuilt for the new share with its burst spent -- what it
  spent a moment ago is not known to the new bucket, so it assumes the worst -- and refills at
  the new rate;
- a 429's ``Retry-After`` is the authority: that method waits it out on this runner
  (:meth:`MethodBudget.hold`); the refused call is retried by the caller after the same wait;
- low-value calls (:data:`bridge.chat.slack.tiers.LOW_VALUE`) ask :meth:`MethodBudget.short`
  first and coalesce or drop themselves (:mod:`bridge.chat.slack.reactions`) rather than
  queue behind their budget; everything else waits.

``chat.postMessage`` is not budgeted here: :mod:`bridge.chat.slack.pacing` paces posts per
channel and workspace-wide (and takes the same share).
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from aiolimiter import AsyncLimiter
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bridge.chat.slack.tiers import Tier, budget_of

MARGIN = 0.05
"""How much slower than the tier the buckets drain."""
BURST_SHARE = 0.8
"""How much of a tier's burst a runner (alone) uses at once."""


def _bucket(tier: Tier, hosts: int) -> AsyncLimiter:
    per_second = tier.per_minute / 60 / hosts * (1 - MARGIN)
    burst = max(1, math.floor(tier.burst * BURST_SHARE / hosts))
    return AsyncLimiter(burst, burst / per_second)


class MethodBudget:
    """One bucket per budgeted method, created on first use; owned by the backend's loop."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        """False (tests that want raw speed): no buckets; a 429's hold still rules."""
        self.hosts = 1
        self._buckets: dict[str, AsyncLimiter] = {}
        self._drained: set[str] = set()
        self._hold_until: dict[str, float] = {}
        self.rate_limited: dict[str, int] = {}
        """429 answers seen, per method (each one says a budget is wrong for this workspace)."""

    def _bucket(self, method: str) -> AsyncLimiter | None:
        bucket = self._buckets.get(method)
        if bucket is None and self.enabled and (tier := budget_of(method)) is not None:
            bucket = self._buckets[method] = _bucket(tier, self.hosts)
        return bucket

    async def _wait_hold(self, method: str) -> None:
        while (wait := self._hold_until.get(method, 0.0) - time.monotonic()) > 0:
            await asyncio.sleep(wait)

    async def acquire(self, method: str) -> None:
        """Wait until ``method`` may be called (its hold is over and a slot is free)."""
        await self._wait_hold(method)
        bucket = self._bucket(method)
        if bucket is None:
            return
        if method in self._drained:  # a rebuilt bucket: its burst is assumed spent
            self._drained.discard(method)
            await bucket.acquire(bucket.max_rate)
        await bucket.acquire()

    def short(self, method: str) -> bool:
        """True when a call of ``method`` would have to wait now."""
        if self._hold_until.get(method, 0.0) > time.monotonic():
            return True
        bucket = self._bucket(method)
        return bucket is not None and (method in self._drained or not bucket.has_capacity())

    def hold(self, method: str, seconds: float) -> None:
        """Slack answered 429 for ``method``: no call of it for ``seconds``."""
        self.rate_limited[method] = self.rate_limited.get(method, 0) + 1
        if budget_of(method) is None:
            return  # posting: its channel is held by the pacer, not every channel
        until = time.monotonic() + seconds
        self._hold_until[method] = max(self._hold_until.get(method, 0.0), until)

    def share(self, hosts: int) -> bool:
        """``hosts`` runners share the workspace now: rebuild every bucket at ``1/hosts``;
        True when the share changed."""
        hosts = max(1, hosts)
        if hosts == self.hosts:
            return False
        self.hosts = hosts
        for method in list(self._buckets):
            del self._buckets[method]
            self._drained.add(method)
        return True


def retry_after_of(err: SlackApiError) -> float | None:
    """Seconds a 429 asks to wait (None: not a 429)."""
    if int(getattr(err.response, "status_code", 0) or 0) != 429:
        return None
    try:
        return max(float(err.response.headers.get("Retry-After", 1)), 0.0)
    except (TypeError, ValueError):
        return 1.0


class BudgetedClient(AsyncWebClient):
    """slack_sdk's async client, every call taking its method's slot in ``budget`` first."""

    def __init__(self, *args: Any, budget: MethodBudget | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget = budget

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        if self.budget is not None:
            await self.budget.acquire(api_method)
        try:
            return await super().api_call(api_method, **kwargs)
        except SlackApiError as err:
            after = retry_after_of(err)
            if after is not None and self.budget is not None:
                self.budget.hold(api_method, after)
            raise
