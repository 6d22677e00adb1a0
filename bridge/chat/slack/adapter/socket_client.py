"""slack_sdk's aiohttp Socket Mode client, with the reconnects a runner can trust.

What slack_sdk 3.48 does, read from its source, and what this subclass changes:

- **One connection at a time.** Its ``connect()`` closes the old websocket before it opens the
  new one (good: Slack never has two of ours to route to). But ``connect_to_new_endpoint``
  waits only 5 s for its lock, and a *forced* reconnect (every ``disconnect`` envelope) then
  goes ahead without it: two ``connect()`` at once both close the same old session and each
  opens a new one; the first is overwritten, never closed, and stays registered with Slack,
  which keeps routing envelopes to it (a second live connection nobody reads). Here every
  reconnect waits for the lock, however long, and one that finds the session it was asked to
  replace already replaced does nothing.
- **No reconnect storm.** slack_sdk answers every ``disconnect`` with an immediate reconnect.
  After ``too_many_websockets`` (the app is at Slack's ten connections) that reconnect is
  refused again at once, in a tight loop of ``apps.connections.open`` (Tier 1); after
  ``link_disabled`` (Socket Mode was turned off) ``apps.connections.open`` fails and the
  monitor retries it every ping. Here both back off exponentially (0.5 s doubling to 30 s),
  reset by the next ``hello``; ``link_disabled`` is logged as the operator's to fix.
- **What it heard, and when.** Every text frame with an ``envelope_id`` stamps
  :attr:`last_envelope` (monotonic) and the ``(channel, ts)`` of a message event is remembered,
  for the deaf check (:mod:`bridge.chat.slack.adapter.deafness`), which calls :meth:`replace`.

Nothing unacknowledged is lost in a switch: the ack goes out only once the listener kept the
message (``process_before_response``); an envelope whose ack did not make it is sent again by
Slack, and the message's dedupe key makes the second delivery a no-op.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient

log = logging.getLogger("agentbridge.slack")

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
SEEN_KEEP = 5000
"""How many message events' ``(channel, ts)`` are remembered for the deaf check."""


class GuardedSocketModeClient(SocketModeClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_envelope = time.monotonic()
        self.generation = 0
        """How many sessions were established; a reconnect request remembers the one it saw."""
        self.seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._failures = 0
        self._not_before = 0.0

    # -- what arrives ----------------------------------------------------------------------

    async def enqueue_message(self, message: str) -> None:
        self._note(message)
        await super().enqueue_message(message)

    def _note(self, raw: str) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        if message.get("type") == "hello":
            self._failures, self._not_before = 0, 0.0
            log.info("slack: Socket Mode hello (%s connections)", message.get("num_connections"))
        if "envelope_id" not in message:
            return
        self.last_envelope = time.monotonic()
        event = (message.get("payload") or {}).get("event") or {}
        if isinstance(event, dict) and event.get("type") == "message" and event.get("ts"):
            self.seen[(str(event.get("channel") or ""), str(event["ts"]))] = None
            while len(self.seen) > SEEN_KEEP:
                self.seen.popitem(last=False)

    async def run_message_listeners(self, message: dict[str, Any], raw_message: str) -> None:
        if message.get("type") != "disconnect":
            await super().run_message_listeners(message, raw_message)
            return
        reason = str(message.get("reason") or "")
        if reason == "link_disabled":
            log.warning(
                "slack: Slack turned Socket Mode off for this app (link_disabled); turn it on "
                "again in the app's settings (Socket Mode). Reconnecting with backoff meanwhile"
            )
        else:
            log.info("slack: Slack asked for a new connection (%s)", reason or "no reason")
        if reason in ("too_many_websockets", "link_disabled"):
            self._penalize()
        try:
            await self.replace()
        except Exception as err:  # the monitor keeps trying, with the same backoff
            log.warning("slack: reconnecting after %s failed: %s", reason, err)

    # -- reconnecting ------------------------------------------------------------------------

    async def replace(self) -> None:
        """Close the current connection and open a new one (a forced reconnect)."""
        await self.connect_to_new_endpoint(force=True)

    async def connect_to_new_endpoint(self, force: bool = False) -> None:
        seen = self.generation
        async with self.connect_operation_lock:
            if self.closed:
                return
            if await self.is_connected() and (not force or self.generation != seen):
                return  # connected, or the session this request was about is already replaced
            self.wss_uri = await self.issue_new_wss_url()
            await self.connect()

    async def connect(self) -> None:
        await super().connect()  # type: ignore[no-untyped-call]
        self.generation += 1
        self.last_envelope = time.monotonic()

    async def issue_new_wss_url(self) -> str:
        delay = self._not_before - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            return await super().issue_new_wss_url()
        except SlackApiError:
            self._penalize()
            raise

    def _penalize(self) -> None:
        """The next ``apps.connections.open`` waits: 0.5 s, doubling to 30 s."""
        delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2**self._failures)
        self._failures += 1
        self._not_before = time.monotonic() + delay
