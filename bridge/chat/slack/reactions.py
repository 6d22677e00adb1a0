"""Receipt reactions under a short budget: coalesced per message, the oldest dropped last.

A steered message gets a reaction when it is queued and another when it is delivered (or
failed); ``reactions.add`` is Tier 3, about 50 a minute for the whole workspace, so a busy
fleet can want more than Slack allows. A reaction says less than the post or answer it
accompanies, so it never waits in their way: when the budget has room it is sent at once (and
its error, if any, is the caller's); when it is short the reaction is queued and the call
returns. Queued, a message's newer reaction replaces its older one not yet sent -- the receipt
reactions are a progression (queued, then delivered or failed), so the newest says what the
older would have -- and past :data:`MAX_PENDING` waiting messages the oldest are dropped,
counted and logged: under a sustained overload the receipts degrade, the posts do not. One
task sends the queue, oldest first, each call waiting for its slot in the budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from bridge.chat.slack.budget import MethodBudget

log = logging.getLogger("agentbridge.slack")

METHOD = "reactions.add"
MAX_PENDING = 200
"""Messages whose reaction may wait at once; beyond, the oldest one's is dropped."""

Send = Callable[[str, str, str], Awaitable[None]]
"""(channel id, message ts, emoji): the ``reactions.add`` call itself."""


class Reactions:
    """The backend's reactions; owned by its event loop."""

    def __init__(self, send: Send, budget: MethodBudget, limit: int = MAX_PENDING) -> None:
        self.send = send
        self.budget = budget
        self.limit = limit
        self.pending: OrderedDict[tuple[str, str], str] = OrderedDict()
        self.coalesced = 0
        """Reactions replaced by a newer one for the same message before they were sent."""
        self.dropped = 0
        """Reactions never sent because too many were waiting."""
        self._task: asyncio.Task[None] | None = None

    async def add(self, channel: str, ts: str, emoji: str) -> None:
        if not self.pending and not self.budget.short(METHOD):
            await self.send(channel, ts, emoji)
            return
        key = (channel, ts)
        if key in self.pending:
            self.coalesced += 1
        self.pending[key] = emoji
        while len(self.pending) > self.limit:
            (old_channel, old_ts), old = self.pending.popitem(last=False)
            self.dropped += 1
            log.warning(
                "slack: reactions.add budget short; :%s: on %s/%s dropped (%d so far)",
                old,
                old_channel,
                old_ts,
                self.dropped,
            )
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self.pending:
            (channel, ts), emoji = self.pending.popitem(last=False)
            try:
                await self.send(channel, ts, emoji)  # waits for its slot in the budget
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a receipt is never worth breaking anything for
                log.warning("slack: reaction :%s: on %s/%s not added: %s", emoji, channel, ts, err)

    async def close(self) -> None:
        """Stop sending; what still waits is dropped (a receipt is not worth a delayed stop)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
