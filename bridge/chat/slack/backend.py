"""SlackBackend: the ChatBackend people use, on slack_sdk's async Web API client.

Outbound rules:
- about one message per second per channel (Slack's posting limit); bursts are coalesced by the
  mirror rather than dropped;
- 429 waits out ``Retry-After``; 5xx and connection errors back off exponentially;
- the ledger decides about duplicates, not the SDK: a failed call whose outcome is unknown (5xx,
  reset) is only retried after looking the message up by its event ids (message metadata), so
  a post Slack accepted is never posted twice. The SDK's own retry handlers are off for that
  reason.
Channel names are resolved to ids once at start; a missing channel or one the bot is not in is
reported in one clear line per channel.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from bridge.chat.protocol import ActionHandler, CommandHandler, Incoming, Outgoing, Posted

log = logging.getLogger("agentbridge.slack")

METADATA_TYPE = "agentbridge_event"
DEFAULT_API = "https://slack.com/api/"


def _status(exc: BaseException) -> int | None:
    if isinstance(exc, SlackApiError):
        return int(getattr(exc.response, "status_code", 0) or 0)
    return None


def _retryable(exc: BaseException) -> bool:
    status = _status(exc)
    if status is not None:
        return status == 429 or status >= 500
    return isinstance(exc, aiohttp.ClientError | TimeoutError | ConnectionError)


def _ambiguous(exc: BaseException | None) -> bool:
    """The call may have taken effect (unlike a 429, which Slack rejects before acting)."""
    return exc is not None and _status(exc) != 429


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, SlackApiError) and _status(exc) == 429:
        try:
            return max(float(exc.response.headers.get("Retry-After", 1)), 0.0)
        except (TypeError, ValueError):
            return 1.0
    return float(min(0.5 * 2 ** (state.attempt_number - 1), 30.0))


class SlackBackend:
    name = "slack"
    coalesce = True
    live_status = True

    def __init__(
        self,
        bot_token: str,
        app_token: str,
        api_url: str | None = None,
        *,
        min_interval: float = 1.0,
        attempts: int = 8,
    ) -> None:
        base = api_url or DEFAULT_API
        self.client = AsyncWebClient(
            token=bot_token, base_url=base if base.endswith("/") else base + "/", retry_handlers=[]
        )
        self.app_token = app_token
        self.min_interval = min_interval
        self.attempts = attempts
        self.channels: dict[str, str] = {}
        self.bot_user_id = ""
        self.bot_id = ""
        self.command_handler: CommandHandler | None = None
        self.on_action: ActionHandler | None = None
        self.incoming: asyncio.Queue[Incoming] = asyncio.Queue()
        self._pace: dict[str, tuple[asyncio.Lock, list[float]]] = {}
        self._names: dict[str, str] = {}
        self._members: dict[str, tuple[float, int]] = {}
        self._transport: Any = None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        from bridge.chat.slack.adapter.socket_mode import SocketModeTransport
        from bridge.chat.slack.listeners import register

        auth = await self._call(self.client.auth_test)
        self.bot_user_id = str(auth.get("user_id") or "")
        self.bot_id = str(auth.get("bot_id") or "")
        self._transport = SocketModeTransport(self.client, self.app_token)
        register(self._transport, self)
        await self._transport.connect()

    async def close(self) -> None:
        if self._transport is not None:
            await self._transport.close()
            self._transport = None

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

    def channel_id(self, channel: str) -> str:
        return self.channels.get(channel, channel)

    # -- outbound -------------------------------------------------------------------------

    async def _paced(self, channel: str) -> None:
        lock, last = self._pace.setdefault(channel, (asyncio.Lock(), [0.0]))
        async with lock:
            wait = last[0] + self.min_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            last[0] = time.monotonic()

    async def _call(
        self,
        method: Callable[..., Awaitable[Any]],
        *,
        landed: Callable[[], Awaitable[Any | None]] | None = None,
        **kwargs: Any,
    ) -> Any:
        last: BaseException | None = None
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_retryable),
            wait=_wait,
            stop=stop_after_attempt(self.attempts),
            reraise=True,
        ):
            with attempt:
                if landed is not None and _ambiguous(last):
                    already = await landed()
                    if already is not None:
                        return already
                try:
                    return await method(**kwargs)
                except BaseException as exc:
                    last = exc
                    if _retryable(exc):
                        log.warning(
                            "slack: %s failed (%s); retrying",
                            getattr(method, "__name__", "call"),
                            exc,
                        )
                    raise
        raise AssertionError("unreachable")

    async def post(self, msg: Outgoing) -> Posted:
        channel = self.channel_id(msg.channel)
        await self._paced(channel)
        if msg.as_file:
            return await self._upload(channel, msg)
        ids = list(msg.ids)

        async def landed() -> dict[str, Any] | None:
            found = await self.find_posted(channel, ids, msg.thread)
            return {"ts": found[ids[0]]} if ids[0] in found else None

        resp = await self._call(
            self.client.chat_postMessage,
            landed=landed,
            channel=channel,
            text=msg.text,
            thread_ts=msg.thread,
            unfurl_links=False,
            unfurl_media=False,
            blocks=list(msg.blocks) or None,
            metadata={"event_type": METADATA_TYPE, "event_payload": {"slug": msg.slug, "ids": ids}},
        )
        return Posted(str(resp["ts"]))

    async def _upload(self, channel: str, msg: Outgoing) -> Posted:
        resp = await self._call(
            self.client.files_upload_v2,
            channel=channel,
            content=msg.text,
            filename=msg.filename or "output.txt",
            title=msg.filename or "output",
            thread_ts=msg.thread,
        )
        files = resp.get("files") or [resp.get("file") or {}]
        return Posted("file:" + str(files[0].get("id", "")))

    async def update(
        self, channel: str, ref: str, text: str, blocks: Sequence[Mapping[str, Any]] | None = None
    ) -> None:
        await self._call(
            self.client.chat_update,
            channel=self.channel_id(channel),
            ts=ref,
            text=text,
            blocks=list(blocks) if blocks is not None else [],
        )

    async def open_view(self, trigger_id: str, view: Mapping[str, Any]) -> None:
        await self._call(self.client.views_open, trigger_id=trigger_id, view=dict(view))

    async def react(self, channel: str, ref: str, emoji: str) -> None:
        try:
            await self._call(
                self.client.reactions_add,
                channel=self.channel_id(channel),
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

    async def find_posted(
        self, channel: str, event_ids: Sequence[str], thread: str | None = None
    ) -> dict[str, str]:
        """Look our recent posts up by the event ids in their metadata (last 3 days)."""
        wanted = set(event_ids)
        found: dict[str, str] = {}
        cursor: str | None = None
        oldest = f"{time.time() - 3 * 86400:.6f}"
        for _ in range(20):
            kwargs: dict[str, Any] = {
                "channel": self.channel_id(channel),
                "limit": 200,
                "include_all_metadata": True,
                "cursor": cursor,
            }
            if thread:
                page = await self.client.conversations_replies(ts=thread, **kwargs)
            else:
                page = await self.client.conversations_history(oldest=oldest, **kwargs)
            for message in page.get("messages") or []:
                meta = message.get("metadata") or {}
                if meta.get("event_type") != METADATA_TYPE:
                    continue
                for event_id in (meta.get("event_payload") or {}).get("ids") or []:
                    if event_id in wanted:
                        found[event_id] = str(message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor or wanted <= set(found):
                break
        return found

    # -- inbound ---------------------------------------------------------------------------

    async def receive(self) -> AsyncIterator[Incoming]:
        while True:
            yield await self.incoming.get()

    async def user_name(self, user: str) -> str:
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
