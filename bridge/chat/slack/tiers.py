"""Slack's rate-limit tier of every Web API method the product calls: the one table the
product's budgets (:mod:`bridge.chat.slack.budget`) are built from.

Slack limits each method "per API method per app per workspace"
(https://docs.slack.dev/apis/web-api/rate-limits): Tier 1 "1+ per minute", Tier 2 "20+", Tier 3
"50+", Tier 4 "100+", each with some burst it does not quantify; each method's tier is the
"Rate limits" fact of its page, https://docs.slack.dev/reference/methods/<method> (for
instance reactions.add and chat.update: Tier 3; conversations.list: Tier 2;
apps.connections.open: Tier 1). ``chat.postMessage`` is special (one a second per channel plus
a workspace-wide cap) and is paced by :mod:`bridge.chat.slack.pacing` instead.

The figures are the tiers' floors, and the bursts small, because a budget the workspace may
exceed is not a budget: a runner that stays under the floor never sees a 429 whatever Slack's
real headroom is. ``tests/unit/test_slack_budget.py`` checks that every method of
:data:`bridge.chat.slack.scopes.METHODS` has a tier here, and that no budget is looser than
the emulator's model of Slack.
"""

from __future__ import annotations

from dataclasses import dataclass

POSTING = "chat.postMessage"
"""The special-tier method paced per channel (not budgeted here)."""


@dataclass(frozen=True, slots=True)
class Tier:
    """A workspace-wide budget: ``per_minute`` calls a minute, ``burst`` of them at once."""

    per_minute: float
    burst: int


TIERS: dict[int, Tier] = {
    1: Tier(1, 2),
    2: Tier(20, 5),
    3: Tier(50, 10),
    4: Tier(100, 20),
}

METHOD_TIERS: dict[str, int] = {
    "auth.test": 4,  # "special" (hundreds a minute): budgeted as Tier 4
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
    "views.open": 4,
    "files.getUploadURLExternal": 4,
    "files.completeUploadExternal": 4,
}
"""Every method the product calls but ``chat.postMessage``, with its tier."""

SPECIAL: dict[str, Tier] = {
    # Tier 1's rate, but an app may hold ten Socket Mode connections and each needs its own URL
    "apps.connections.open": Tier(1, 10),
}

LOW_VALUE = frozenset({"reactions.add", "reactions.remove"})
"""Methods whose calls may be coalesced or dropped when their budget is short (the receipt
reactions): never a post, an edit or an answer."""


def budget_of(method: str) -> Tier | None:
    """The workspace's budget for ``method`` (None: not budgeted here, e.g. posting)."""
    if method in SPECIAL:
        return SPECIAL[method]
    tier = METHOD_TIERS.get(method)
    return TIERS[tier] if tier is not None else None
