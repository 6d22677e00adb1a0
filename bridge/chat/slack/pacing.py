"""Posting pace for Slack: a token bucket per channel, one for the workspace, 429 the authority.

Slack allows "1 message per second per channel, short bursts >1 allowed" and keeps a
workspace-wide limit it does not publish (it speaks of several hundred messages a minute). A
fixed one-message-per-second gap made a turn's tool call, tool output and answer queue a second
behind each other although Slack would have taken them at once, so posts are paced the way Slack
limits them:

- per channel: a leaky bucket (:class:`aiolimiter.AsyncLimiter`) of ``burst`` messages, draining
  at ``per_second``. Defaults match the emulator's (1/s, burst 4). The bucket drains
  :data:`MARGIN` slower than the published rate, so the few milliseconds between taking a slot
  here and the post reaching Slack never turn a burst's last message into a 429;
- per workspace: one more bucket every channel's posts also draw from (default 5/s, burst 20:
  300 a minute; :data:`WORKSPACE_BURST_SHARE` of the burst is used, and ``1/N`` of it all with
  N hosts, :meth:`Pacer.share`), so fifty busy agents queue here instead of starting a 429
  storm. A channel's own slot is taken first, so a channel waiting for its own budget holds none
  of the workspace's;
- a 429's ``Retry-After`` overrides both: every post to that channel waits it out (recorded by
  :meth:`Pacer.hold`; the refused call itself is retried by the posting code after the same wait).

A slot can be taken ahead of the post (:meth:`Pacer.reserve`): the mirror waits for its slot
first and builds the message only then, so whatever arrived in the meantime joins it.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from aiolimiter import AsyncLimiter

MARGIN = 0.05
"""How much slower than the configured rate the buckets drain (clock and network jitter)."""
WORKSPACE_BURST_SHARE = 0.8
"""How much of ``workspace_burst`` is used at once: the workspace bucket's burst is many
channels' posts in flight together, whose arrival order at Slack jitters; a full burst's last
post could arrive after the next one's slot (a 429 seen with 20 agents at once)."""


@dataclass(frozen=True, slots=True)
class Pace:
    """Posting limits: ``per_second`` <= 0 turns pacing off (tests that want raw speed)."""

    per_second: float = 1.0
    burst: int = 4
    workspace_per_second: float = 5.0
    workspace_burst: int = 20


def _bucket(per_second: float, burst: int) -> AsyncLimiter:
    burst = max(burst, 1)
    return AsyncLimiter(burst, burst / per_second * (1 + MARGIN))


class Pacer:
    """Slots for posts, per channel id; owned by the backend's event loop."""

    def __init__(self, pace: Pace) -> None:
        self.pace = pace
        self.hosts = 1
        self._channels: dict[str, AsyncLimiter] = {}
        self._workspace = self._workspace_bucket()
        self._held: dict[str, int] = {}
        self._hold_until: dict[str, float] = {}
        self.rate_limited = 0
        """429 answers seen (every one is a sign the pace is wrong for this workspace)."""

    def _workspace_bucket(self) -> AsyncLimiter | None:
        if self.pace.workspace_per_second <= 0:
            return None
        burst = max(1, math.floor(self.pace.workspace_burst * WORKSPACE_BURST_SHARE / self.hosts))
        return _bucket(self.pace.workspace_per_second / self.hosts, burst)

    def share(self, hosts: int) -> bool:
        """``hosts`` runners post to this workspace: take ``1/hosts`` of its posting cap (the
        per-channel buckets stay: a channel's agent runs on one host). True when it changed."""
        hosts = max(1, hosts)
        if hosts == self.hosts:
            return False
        self.hosts = hosts
        self._workspace = self._workspace_bucket()
        return True

    @property
    def enabled(self) -> bool:
        return self.pace.per_second > 0

    async def _wait_hold(self, channel: str) -> None:
        while (wait := self._hold_until.get(channel, 0.0) - time.monotonic()) > 0:
            await asyncio.sleep(wait)

    async def _take(self, channel: str) -> None:
        await self._wait_hold(channel)
        if not self.enabled:
            return
        bucket = self._channels.get(channel)
        if bucket is None:
            bucket = self._channels[channel] = _bucket(self.pace.per_second, self.pace.burst)
        await bucket.acquire()
        if self._workspace is not None:
            await self._workspace.acquire()

    async def reserve(self, channel: str) -> float:
        """Take a slot in ``channel`` now and keep it for the next post there; returns how long
        the slot took to come (0 when one was free)."""
        started = time.monotonic()
        await self._take(channel)
        self._held[channel] = self._held.get(channel, 0) + 1
        return time.monotonic() - started

    async def slot(self, channel: str) -> None:
        """Before a post: use a reserved slot, or wait for one."""
        held = self._held.get(channel, 0)
        if held:
            self._held[channel] = held - 1
            await self._wait_hold(channel)  # a 429 since the reservation still rules
            return
        await self._take(channel)

    def hold(self, channel: str, seconds: float) -> None:
        """Slack answered 429: nothing more goes to ``channel`` for ``seconds``."""
        self.rate_limited += 1
        until = time.monotonic() + seconds
        self._hold_until[channel] = max(self._hold_until.get(channel, 0.0), until)
