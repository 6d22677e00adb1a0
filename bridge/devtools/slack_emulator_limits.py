"""Rate limits of the Slack emulator, modelled on the ones Slack publishes.

Slack's rate-limit guide (https://docs.slack.dev/apis/web-api/rate-limits, formerly
https://api.slack.com/apis/rate-limits): limits apply "per API method per app per workspace", in
tiers -- Tier 1 "1+ per minute" ("a small amount of burst behavior is tolerated"), Tier 2 "20+
per minute" ("occasional bursts"), Tier 3 "50+ per minute" ("sporadic bursts are welcome"),
Tier 4 "100+ per minute" ("generous burst behavior") -- and a special tier: "chat.postMessage
generally allows posting one message per second per channel, while also maintaining a
workspace-wide limit" ("Posting messages: 1 per second, short bursts >1 allowed"). Over a limit
Slack answers HTTP 429 with a `Retry-After` header (whole seconds) and
`{"ok": false, "error": "ratelimited"}`, and does nothing else: the call had no effect.

Every method's tier is the "Rate limits" fact of its reference page,
https://docs.slack.dev/reference/methods/<method> (e.g. .../methods/reactions.add: Tier 3;
.../methods/reactions.remove: Tier 2; .../methods/apps.connections.open: Tier 1), collected in
:data:`METHOD_TIERS`. Where Slack is vague the emulator is strict: a tier allows exactly its
floor (1, 20, 50, 100 a minute, not "+"), its burst is small (:data:`TIER_LIMITS`), `auth.test`
("special", hundreds a minute) counts as Tier 4, and the workspace-wide posting cap Slack does
not publish ("several hundred a minute") is 300 a minute with a burst of 20. Budgets are per
emulator, i.e. per workspace and app: every token and connection of the app draws from the same
bucket, so two runners against one emulator share it, as two hosts share a real workspace's.

Posting (`chat.postMessage`, and `files.completeUploadExternal`, since a file share is a
message) has a bucket per channel (default 1/second, burst 4: four back-to-back posts pass, a
fifth within the same second is refused) plus the workspace cap. Every other method has its
tier's bucket. Tests tighten or loosen any of it through the emulator's constructor options:
`rate_limit` (per channel), `workspace_rate_limit` (the posting cap) and `method_limits`, which
is merged over the tier table (a `RateLimit` replaces a method's bucket, None removes it;
:data:`NO_TIERS` removes all of them).
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
WORKSPACE_POSTING_LIMIT = RateLimit(per_second=5.0, burst=20)
"""The workspace-wide posting cap: 300 a minute, the low end of Slack's "several hundred"."""

TIER_LIMITS: dict[int, RateLimit] = {
    1: RateLimit(per_second=1 / 60, burst=2),
    2: RateLimit(per_second=20 / 60, burst=5),
    3: RateLimit(per_second=50 / 60, burst=10),
    4: RateLimit(per_second=100 / 60, burst=20),
}
"""Each tier's floor, per minute, with a burst of about a tenth to a quarter of that minute."""

METHOD_TIERS: dict[str, int] = {
    "auth.test": 4,  # "special": hundreds a minute; counted as Tier 4
    "apps.connections.open": 1,
    "chat.update": 3,
    "chat.delete": 3,
    "chat.postEphemeral": 4,
    "conversations.list": 2,
    "conversations.info": 3,
    "conversations.join": 3,
    "conversations.history": 3,
    "conversations.replies": 3,
    "reactions.add": 3,
    "reactions.remove": 2,
    "users.info": 4,
    "files.getUploadURLExternal": 4,
    "files.completeUploadExternal": 4,
    "files.info": 4,
    "files.list": 3,
    "views.open": 4,
    "views.push": 4,
    "views.update": 4,
}
"""The tier of every method the emulator serves except `chat.postMessage` (special, above)."""

APP_LIMITS: dict[str, RateLimit] = {
    "apps.connections.open": RateLimit(per_second=1 / 60, burst=10),
}
"""Tier 1's rate with a burst of ten: Slack lets an app hold ten Socket Mode connections, and
each needs its own URL, so opening them all at once must be within "a small amount of burst"."""

DEFAULT_METHOD_LIMITS: dict[str, RateLimit] = {
    **{method: TIER_LIMITS[tier] for method, tier in METHOD_TIERS.items()},
    **APP_LIMITS,
}
"""Every method's workspace-wide bucket, enforced by default."""

NO_TIERS: dict[str, RateLimit | None] = dict.fromkeys(DEFAULT_METHOD_LIMITS)
"""`method_limits=NO_TIERS`: only the posting buckets, as before tiers were enforced."""


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
    may replace with a fake one to step time instead of sleeping. `method_limits` is merged over
    :data:`DEFAULT_METHOD_LIMITS` (None for a method removes its bucket).
    """

    def __init__(
        self,
        clock: Callable[[], float],
        per_channel: RateLimit | None = POSTING_LIMIT,
        workspace: RateLimit | None = WORKSPACE_POSTING_LIMIT,
        method_limits: Mapping[str, RateLimit | None] | None = None,
    ) -> None:
        self.clock = clock
        self.per_channel = per_channel
        self.workspace = workspace
        merged = {**DEFAULT_METHOD_LIMITS, **(method_limits or {})}
        self.method_limits = {m: limit for m, limit in merged.items() if limit is not None}
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, scope: str, key: str, limit: RateLimit, now: float) -> TokenBucket:
        bucket = self._buckets.get((scope, key))
        if bucket is None:
            bucket = self._buckets[(scope, key)] = TokenBucket(limit, now)
        return bucket

    def check(self, method: str, channel: str | None) -> tuple[str, int] | None:
        """None if the call may go ahead (its tokens are spent), else (scope, Retry-After):
        scope is "channel", "workspace" (the posting cap) or "method" (the method's tier, shared
        by the whole workspace); Retry-After is whole seconds, at least 1."""
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
