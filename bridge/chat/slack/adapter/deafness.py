"""Noticing a deaf Socket Mode connection: open, answering pings, yet no events arrive.

Ping/pong cannot see it (the socket is fine; Slack just routes nothing to it, or routes and never
writes), and silence alone proves nothing (a quiet workspace is silent too). The evidence is
traffic seen elsewhere: messages people posted in the agents' channels that the connection never
delivered. So, every ``interval`` seconds, *only if no envelope at all arrived in that time*, the
watch reads the newest messages of one of the runner's channels (``conversations.history``,
Slack's Tier 3, about 50 a minute for the workspace: hence one channel per check, taken in turn,
and nothing while events flow). A message from someone other than our bot, posted since the
watch started and more than :data:`GRACE_S` ago, whose event never arrived, means the connection
is deaf: it is replaced (closed, then a new one opened; see
:mod:`bridge.chat.slack.adapter.socket_client`), and Slack's retries of the events routed to
the deaf one reach the new one. Each such message counts once: one Slack gave up on does not
make the watch reconnect forever. With several hosts on one app, Slack routes each event to one
of their connections, so a message in this runner's channel may have been heard by another
host: a message that carries a reaction of our bot (the receipt every queued message gets) was
heard by someone and does not count.

``interval`` is ``AGENTBRIDGE_SLACK_DEAF_PROBE_SECONDS`` (default 30 s; 0 turns the watch off):
with N channels a deaf connection is noticed within about N × interval of a message in the
channel checked, well inside the 6 minutes of Slack's redeliveries for a handful of agents.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bridge.chat.slack.adapter.socket_client import GuardedSocketModeClient

log = logging.getLogger("agentbridge.slack")

DEFAULT_INTERVAL_S = 30.0
GRACE_S = 10.0
"""How old an undelivered message must be before it counts: time for Slack's first delivery,
a reconnect, and the emulator's or Slack's first retry."""

History = Callable[[str, str, str], Awaitable[Sequence[dict[str, Any]]]]
"""``(channel id, oldest ts, latest ts) -> the newest messages between`` (``conversations.history``,
paced by the backend). Asking only up to :data:`GRACE_S` ago matters in a busy channel: the
newest page would otherwise hold only messages too fresh to count."""


class DeafWatch:
    def __init__(
        self,
        client: GuardedSocketModeClient,
        history: History,
        channels: Callable[[], Sequence[str]],
        bot_user_id: Callable[[], str],
        interval: float = DEFAULT_INTERVAL_S,
        grace: float = GRACE_S,
    ) -> None:
        self.client = client
        self.history = history
        self.channels = channels
        self.bot_user_id = bot_user_id
        self.interval = interval
        self.grace = grace
        self.since = time.time()
        self.replaced = 0
        self._accounted: set[tuple[str, str]] = set()
        self._turn = 0

    async def run(self) -> None:
        while not self.client.closed:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a failed look-up is no evidence either way
                log.warning("slack: the deaf-connection check failed: %s", err)

    async def check(self) -> bool:
        """One check; True when it found the connection deaf and replaced it."""
        if time.monotonic() - self.client.last_envelope < self.interval:
            return False  # events flow: the connection hears
        channels = list(dict.fromkeys(self.channels()))
        if not channels:
            return False
        channel = channels[self._turn % len(channels)]
        self._turn += 1
        latest = max(self.since, time.time() - self.grace)  # busy channels: only the settled past
        missed = self.missed(
            channel, await self.history(channel, f"{self.since:.6f}", f"{latest:.6f}")
        )
        if not missed:
            return False
        self._accounted.update((channel, ts) for ts in missed)
        log.warning(
            "slack: the Socket Mode connection is deaf (no event for %d message(s) in %s, "
            "e.g. ts %s); replacing it",
            len(missed),
            channel,
            missed[0],
        )
        self.replaced += 1
        await self.client.replace()
        return True

    def missed(self, channel: str, messages: Sequence[dict[str, Any]]) -> list[str]:
        """The ts of each message of someone else's, old enough, never delivered."""
        bot, cutoff = self.bot_user_id(), time.time() - self.grace
        found: list[str] = []
        for m in messages:
            ts = str(m.get("ts") or "")
            if not ts or m.get("bot_id") or (bot and m.get("user") == bot):
                continue
            if bot and any(bot in (r.get("users") or []) for r in m.get("reactions") or []):
                continue  # our receipt reaction: a runner (maybe another host's) heard it
            if float(ts) <= self.since or float(ts) > cutoff:
                continue
            key = (channel, ts)
            if key not in self.client.seen and key not in self._accounted:
                found.append(ts)
        return found
