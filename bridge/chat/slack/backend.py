"""SlackBackend: the ChatBackend people use, on slack_sdk's async Web API client.

The posting half (pacing, retries, look-ups by event id, uploads, what each Slack error means)
lives in :mod:`bridge.chat.slack.posting`; this module has the lifecycle, channels and the
receiving half. Channel names are resolved to ids once at start; a missing channel or one the
bot is not in is reported in one clear line per channel.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from slack_sdk.errors import SlackApiError

from bridge.chat.protocol import (
    ActionHandler,
    Attachment,
    ChatFigures,
    CommandHandler,
    Incoming,
    NotKept,
    Receipt,
)
from bridge.chat.slack import scopes
from bridge.chat.slack.adapter.deafness import DEFAULT_INTERVAL_S
from bridge.chat.slack.budget import BudgetedClient, MethodBudget
from bridge.chat.slack.files import download
from bridge.chat.slack.pacing import Pace, Pacer
from bridge.chat.slack.posting import SlackPosting
from bridge.chat.slack.reactions import Reactions

log = logging.getLogger("agentbridge.slack")

DEFAULT_API = "https://slack.com/api/"


class SlackBackend(SlackPosting):
    name = "slack"
    coalesce = True
    live_status = True

    def __init__(
        self,
        bot_token: str,
        app_token: str,
        api_url: str | None = None,
        *,
        min_interval: float | None = None,
        pace: Pace | None = None,
        attempts: int = 8,
        lookup_attempts: int = 5,
        deaf_probe: float | None = None,
    ) -> None:
        base = api_url or DEFAULT_API
        if pace is None:  # min_interval=0 (tests): no pacing at all; else Slack's limits
            pace = Pace(per_second=0, workspace_per_second=0) if min_interval == 0 else Pace()
        self.pacer = Pacer(pace)
        self.budget = MethodBudget(enabled=self.pacer.enabled)  # every method's tier
        self.client = BudgetedClient(
            token=bot_token,
            base_url=base if base.endswith("/") else base + "/",
            retry_handlers=[],
            budget=self.budget,
        )
        self.reactions = Reactions(self._react_now, self.budget)
        self.app_token = app_token
        self.attempts = attempts
        self.lookup_attempts = lookup_attempts
        self.channels: dict[str, str] = {}
        self.bot_user_id = ""
        self.bot_id = ""
        self.command_handler: CommandHandler | None = None
        self.on_action: ActionHandler | None = None
        self.incoming: asyncio.Queue[Incoming] = asyncio.Queue()
        self.accepting = True
        self.receipts: set[Receipt] = set()
        self._names: dict[str, str] = {}
        self._name_locks: dict[str, asyncio.Lock] = {}
        self._members: dict[str, tuple[float, int]] = {}
        self._transport: Any = None
        self.deaf_probe = deaf_probe
        """Seconds between deaf-connection checks (0: none; None: the default), see
        :mod:`bridge.chat.slack.adapter.deafness`."""

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        from bridge.chat.slack.adapter.socket_mode import SocketModeTransport
        from bridge.chat.slack.listeners import register

        auth = await self._call(self.client.auth_test)
        self.bot_user_id = str(auth.get("user_id") or "")
        self.bot_id = str(auth.get("bot_id") or "")
        granted = scopes.granted_in(getattr(auth, "headers", None) or {})
        if granted is not None and (lacking := scopes.missing(granted)):
            # Slack would say so only when each feature is first used; say it at start
            log.warning(
                "slack: the bot token lacks %s; add them to the Slack app and reinstall it",
                scopes.summary(lacking),
            )
        self._transport = SocketModeTransport(self.client, self.app_token)
        register(self._transport, self)
        _prime_authorization(getattr(self._transport, "app", None), auth)
        await self._transport.connect()
        self._transport.watch(
            self._recent,
            lambda: list(self.channels.values()),
            lambda: self.bot_user_id,
            DEFAULT_INTERVAL_S if self.deaf_probe is None else self.deaf_probe,
        )

    async def close(self) -> None:
        # Messages not yet kept are not acked: Slack delivers them again to the next runner.
        self.accepting = False
        for receipt in list(self.receipts):
            receipt.refuse(NotKept("the runner is stopping"))
        while not self.incoming.empty():
            item = self.incoming.get_nowait()
            if item.receipt is not None:
                item.receipt.refuse(NotKept("the runner is stopping"))
        await self.reactions.close()
        if self._transport is not None:
            await self._transport.close()
            self._transport = None

    async def figures(self) -> ChatFigures:
        connected = await self._transport.connected() if self._transport is not None else False
        return ChatFigures(dict(self.budget.rate_limited), connected)  # 429s by method

    def share_among(self, hosts: int) -> None:
        """``hosts`` live runners share this workspace: budget ``1/hosts`` of every method
        and of the workspace's posting cap (``docs/adr/0006-shared-slack-budget.md``)."""
        if self.budget.share(hosts) | self.pacer.share(hosts):
            log.info("slack: %d hosts share the workspace; budgeting 1/%d of it", hosts, hosts)

    async def resolve_channels(self, wanted: Sequence[str]) -> list[str]:
        """Map every ``#name`` to an id (joining public channels when needed); problems out."""
        cursor: str | None = None
        found: dict[str, dict[str, Any]] = {}
        while True:
            page = await self._call(
                self.client.conversations_list,
                types="public_channel,private_channel",
                exclude_archived=True,
                limit=200,
                cursor=cursor,
            )
            for ch in page.get("channels") or []:
                found[str(ch["name"])] = ch
                if "num_members" in ch:  # spares a Tier 3 conversations.info per channel
                    self._members[str(ch["id"])] = (time.monotonic(), int(ch["num_members"]) - 1)
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        problems: list[str] = []
        for channel in wanted:
            if not channel.startswith("#"):
                self.channels[channel] = channel
                continue
            info = found.get(channel[1:])
            if info is None:
                problems.append(
                    f"Slack: channel {channel} not found (create it, or fix the agent's channel)"
                )
                continue
            self.channels[channel] = str(info["id"])
            if not info.get("is_member"):
                if info.get("is_private"):
                    problems.append(
                        f"Slack: the bot is not in {channel}; invite it with /invite @agentbridge"
                    )
                    continue
                await self._call(self.client.conversations_join, channel=info["id"])
                log.info("slack: joined %s", channel)
        return problems

    async def _recent(self, channel: str, oldest: str, latest: str) -> list[dict[str, Any]]:
        """A channel's newest messages between ``oldest`` and ``latest`` (the deaf-connection
        check's look)."""
        page = await self._call(
            self.client.conversations_history,
            channel=channel,
            oldest=oldest,
            latest=latest,
            limit=20,
        )
        return list(page.get("messages") or [])

    def channel_id(self, channel: str) -> str:
        return self.channels.get(channel, channel)

    # -- outbound (the rest is in posting.py) -----------------------------------------

    async def open_view(self, trigger_id: str, view: Mapping[str, Any]) -> None:
        await self._call(self.client.views_open, trigger_id=trigger_id, view=dict(view))

    async def react(self, channel: str, ref: str, emoji: str) -> None:
        """At once when ``reactions.add`` has budget, else coalesced (:mod:`.reactions`)."""
        await self.reactions.add(self.channel_id(channel), ref, emoji)

    async def _react_now(self, channel: str, ref: str, emoji: str) -> None:
        try:
            await self._call(
                self.client.reactions_add,
                channel=channel,
                timestamp=ref,
                name=emoji,
            )
        except SlackApiError as err:
            if err.response.get("error") != "already_reacted":
                raise

    async def notify_user(self, channel: str, user: str, text: str) -> None:
        await self._call(
            self.client.chat_postEphemeral, channel=self.channel_id(channel), user=user, text=text
        )

    # -- inbound ---------------------------------------------------------------------------

    async def receive(self) -> AsyncIterator[Incoming]:
        while True:
            yield await self.incoming.get()

    async def download(self, url: str, limit: int) -> bytes:
        """A shared file's bytes, with the bot token (see :mod:`bridge.chat.slack.files`)."""
        return await download(self.client, url, limit)

    def attachment(self, file_id: str, name: str, size: int, source: str) -> Attachment:
        from bridge.chat.slack.listeners import attachment

        return attachment(self, file_id, name, size, source)

    async def user_name(self, user: str) -> str:
        # one look-up per person however many of their messages arrive at once (a backlog at
        # start would otherwise be a burst of users.info calls past its tier)
        async with self._name_locks.setdefault(user, asyncio.Lock()):
            if user not in self._names:
                try:
                    info = await self._call(self.client.users_info, user=user)
                    profile = (info.get("user") or {}).get("profile") or {}
                    self._names[user] = str(
                        profile.get("display_name")
                        or profile.get("real_name")
                        or (info.get("user") or {}).get("name")
                        or user
                    )
                except SlackApiError:
                    self._names[user] = user
        return self._names[user]

    async def humans_in(self, channel: str) -> int:
        cached = self._members.get(channel)
        if cached and time.monotonic() - cached[0] < 300:
            return cached[1]
        try:
            info = await self._call(
                self.client.conversations_info, channel=channel, include_num_members=True
            )
            count = int((info.get("channel") or {}).get("num_members") or 2) - 1
        except SlackApiError:
            count = 1
        self._members[channel] = (time.monotonic(), count)
        return count


def _prime_authorization(app: Any, auth: Any) -> None:
    """Hand slack_bolt the ``auth.test`` answer the start already has. Its single-team
    authorization calls ``auth.test`` for every event that arrives before its own first call
    has answered, on a per-request client outside the budget: a backlog of events at start
    (a busy fleet's redeliveries) was a burst of ``auth.test`` calls past the method's tier."""
    from slack_bolt.middleware.authorization.async_single_team_authorization import (
        AsyncSingleTeamAuthorization,
    )

    for middleware in getattr(app, "_async_middleware_list", None) or []:
        if isinstance(middleware, AsyncSingleTeamAuthorization):
            middleware.auth_test_result = middleware.auth_test_result or auth
