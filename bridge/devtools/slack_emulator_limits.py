"""Rate limits of the Slack emulator, modelled on the ones Slack publishes.

Slack's rate-limit guide (https://docs.slack.dev/apis/web-api/rate-limits): "Posting messages:
1 per second, short bursts >1 allowed", and "chat.postMessage generally allows posting one
message per second per channel, while also maintaining a workspace-wide limit". Over a limit
Slack answers HTTP 429 with a `Retry-After` header (whole seconds) and
`{"ok": false, "error": "ratelimited"}`, and does nothing else: the call had no effect.

Slack publishes neither the burst size nor the workspace-wide figure, so both are options. The
emulator's default is a token bucket per channel of 1 message/second with a burst of 4: four
back-to-back posts pass, a fifth within the same second is refused. A client that paces itself
at one post per second per channel (as `SlackBackend` does) never sees a 429, even with a few
milliseconds of jitter between its clock and the emulator's; one that does not, sees them
within its first burst. The workspace budget is off unless given.

Only posts spend from these buckets: `chat.postMessage` and `files.completeUploadExternal` (a
file share is a message). `chat.update` is a Tier 3 method on Slack (50+ per minute per
workspace, "sporadic bursts are welcome"); it is unlimited here unless a limit is passed for
it in `method_limits`, e.g. ``{"chat.update": RateLimit(per_second=50 / 60, burst=50)}``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

POSTING_METHODS = frozenset({"chat.postMessage", "files.completeUploadExternal"})
"""The methods Slack counts as posting a message: they share the per-channel buckets."""


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: up to `burst` calls at once, refilled at `per_second` calls a second."""

    per_second: float = 1.0
    burst: int = 4

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError(f"a rate limit needs per_second > 0 and burst >= 1, not {self}")


POSTING_LIMIT = RateLimit(per_second=1.0, burst=4)
"""The emulator's default per-channel posting limit (see the module docstring)."""


class TokenBucket:
    """Tokens refill continuously; a call spends one. `wait` never spends, so a call refused by
    one bucket (say the workspace's) costs nothing in another (its channel's)."""

    def __init__(self, limit: RateLimit, now: float) -> None:
        self.limit = limit
        self.tokens = float(limit.burst)
        self.stamp = now

    def wait(self, now: float) -> float:
        """Seconds until a token is there; 0 when one is there now."""
        elapsed = max(now - self.stamp, 0.0)
        self.tokens = min(float(self.limit.burst), self.tokens + elapsed * self.limit.per_second)
        self.stamp = max(now, self.stamp)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.limit.per_second

    def take(self) -> None:
        self.tokens -= 1.0


class Limiter:
    """Decides, per Web API call, whether Slack would answer 429 and with which Retry-After.

    Buckets are created on first use; `clock` is the emulator's (monotonic seconds), which a test
    may replace with a fake one to step time instead of sleeping.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        per_channel: RateLimit | None = POSTING_LIMIT,
        workspace: RateLimit | None = None,
        method_limits: Mapping[str, RateLimit] | None = None,
    ) -> None:
        self.clock = clock
        self.per_channel = per_channel
        self.workspace = workspace
        self.method_limits = dict(method_limits or {})
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, scope: str, key: str, limit: RateLimit, now: float) -> TokenBucket:
        bucket = self._buckets.get((scope, key))
        if bucket is None:
            bucket = self._buckets[(scope, key)] = TokenBucket(limit, now)
        return bucket

    def check(self, method: str, channel: str | None) -> tuple[str, int] | None:
        """None if the call may go ahead (its tokens are spent), else (scope, Retry-After):
        scope is "channel", "workspace" or "method"; Retry-After is whole seconds, at least 1."""
        with self._lock:
            now = self.clock()
            buckets: list[tuple[str, TokenBucket]] = []
            if method in POSTING_METHODS:
                if self.per_channel is not None and channel:
                    buckets.append(
                        ("channel", self._bucket("channel", channel, self.per_channel, now))
                    )
                if self.workspace is not None:
                    shared = self._bucket("workspace", "", self.workspace, now)
                    buckets.append(("workspace", shared))
            if method in self.method_limits:
                limit = self.method_limits[method]
                buckets.append(("method", self._bucket("method", method, limit, now)))
            for scope, bucket in buckets:
                wait = bucket.wait(now)
                if wait > 0:
                    return scope, max(1, math.ceil(wait - 1e-9))
            for _, bucket in buckets:
                bucket.take()
            return None
