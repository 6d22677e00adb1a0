"""The posting half of the Slack backend: retries, look-ups, uploads, and what each error means.

Rules, and why:

- paced as Slack limits posting (:mod:`bridge.chat.slack.pacing`: a small burst per channel, a
  workspace budget); the mirror reserves its slot first and coalesces what waited for it;
- 429 waits out ``Retry-After`` (Slack rejected the call before acting, so no look-up), and
  holds every other post to that channel for as long;
- a failure whose outcome is unknown (5xx, reset, timeout: the call may have taken effect) is
  retried only after looking the post up by its identity, so a post Slack accepted is never
  posted twice. slack_sdk's own retry handlers are off for that reason. The look-up itself
  retries (tenacity); if it still fails, the call fails and the ledger keeps the intent
  ``pending`` -- the mirror looks it up again before anything is posted for it;
- identity: a message carries the event ids in its ``metadata``; a file upload (which cannot carry
  metadata) carries :func:`file_token` of its first event id in its file name
  (``output.ab1f2e3d4c5b6a.txt``), found again in the ``files`` of ``conversations.history``;
- ``ok: false`` answers are definite (nothing was posted) and classified by :func:`remedy`:
  ``not_in_channel`` joins a public channel and posts again; ``invalid_blocks`` (or
  ``msg_blocks_too_long``) posts plain text;
  ``msg_too_long`` uploads the text as a file; a channel that is gone, archived or closed to the
  bot, or content still refused after the degraded form, raises :class:`Undeliverable` (the
  mirror skips it with a record, a counter and one alert). Any other code is raised as is: the
  mirror backs off and tries again, so an unknown or auth error is neither a tight loop nor a
  silent skip.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from bridge.chat.protocol import Outgoing, Posted, Undeliverable
from bridge.chat.slack.budget import MethodBudget
from bridge.chat.slack.pacing import Pacer

log = logging.getLogger("agentbridge.slack")

METADATA_TYPE = "agentbridge_event"
LOOKUP_DAYS = 3
"""How far back :meth:`SlackPosting.find_posted` reads a channel's history."""

CHANNEL_GONE = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "team_access_not_granted",
    }
)
"""The channel does not take our posts, and no other form would help."""
CONTENT_REFUSED = frozenset(
    {"invalid_blocks", "invalid_blocks_format", "msg_blocks_too_long", "msg_too_long"}
    | {"no_text", "file_too_large"}
)
"""This message is refused (even in its degraded form); the channel itself is fine."""

_TOKEN = re.compile(r"ab[0-9a-f]{12}")


def file_token(event_id: str) -> str:
    """The look-up key a file upload carries in its name (uploads have no metadata)."""
    return "ab" + hashlib.sha256(event_id.encode()).hexdigest()[:12]


def upload_name(filename: str | None, event_id: str) -> str:
    name = PurePosixPath(filename or "output.txt")
    return f"{name.stem}.{file_token(event_id)}{name.suffix}"


def error_code(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or "")
    return ""


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


def retry_after(exc: BaseException) -> float | None:
    """Seconds a 429 asks us to wait (None: not a 429)."""
    if not (isinstance(exc, SlackApiError) and _status(exc) == 429):
        return None
    try:
        return max(float(exc.response.headers.get("Retry-After", 1)), 0.0)
    except (TypeError, ValueError):
        return 1.0


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    after = retry_after(exc) if exc is not None else None
    if after is not None:
        return after
    return float(min(0.5 * 2 ** (state.attempt_number - 1), 30.0))


@dataclass(frozen=True, slots=True)
class Form:
    """How a message goes out: as mrkdwn text (the normal form), plain text, or a file."""

    as_file: bool = False
    plain: bool = False


def remedy(code: str, form: Form) -> Form | None:
    """The degraded form to try after ``code``, or None when there is none left."""
    blocks_refused = ("invalid_blocks", "invalid_blocks_format", "msg_blocks_too_long")
    if code in blocks_refused and not form.plain and not form.as_file:
        return replace(form, plain=True)
    if code == "msg_too_long" and not form.as_file:
        return Form(as_file=True)
    return None


_POSTING = frozenset({"chat_postMessage", "files_upload_v2"})
"""The calls whose 429 holds their channel's posts (other methods' 429s hold only their method,
in :class:`bridge.chat.slack.budget.BudgetedClient`)."""


class SlackPosting:
    """Outbound calls; mixed into :class:`bridge.chat.slack.backend.SlackBackend`."""

    client: AsyncWebClient
    attempts: int
    lookup_attempts: int
    pacer: Pacer
    budget: MethodBudget

    def channel_id(self, channel: str) -> str:
        raise NotImplementedError

    async def reserve(self, channel: str) -> float:
        """Wait for a posting slot in ``channel`` and keep it for the next :meth:`post` there,
        so the caller can build that post once the slot has come (seconds waited)."""
        return await self.pacer.reserve(self.channel_id(channel))

    @property
    def rate_limited(self) -> int:
        """429 answers Slack gave this backend so far, every method's."""
        return sum(self.budget.rate_limited.values())

    async def _call(
        self,
        method: Callable[..., Awaitable[Any]],
        *,
        landed: Callable[[], Awaitable[Any | None]] | None = None,
        attempts: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call with retries; after an ambiguous failure, ``landed()`` is asked first (a look-up
        that fails fails the attempt: nothing is re-sent without an answer)."""
        last: BaseException | None = None
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_retryable),
            wait=_wait,
            stop=stop_after_attempt(attempts or self.attempts),
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
                    after = retry_after(exc)
                    posting = getattr(method, "__name__", "") in _POSTING
                    if after is not None and posting and isinstance(kwargs.get("channel"), str):
                        self.pacer.hold(kwargs["channel"], after)
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
        form, joined = Form(as_file=msg.as_file), False
        while True:
            await self.pacer.slot(channel)
            try:
                return await self._send(channel, msg, form)
            except SlackApiError as err:
                code = error_code(err)
                if _status(err) != 200 or not code:
                    raise
                if code == "not_in_channel" and not joined:
                    joined = True
                    if await self._join(channel):
                        continue
                    raise Undeliverable(
                        code, f"the bot is not in {msg.channel} and cannot join it (invite it)"
                    ) from err
                better = remedy(code, form)
                if better is not None:
                    log.warning(
                        "slack: %s refused a post (%s); posting it as %s",
                        msg.channel,
                        code,
                        "a file" if better.as_file else "plain text",
                    )
                    form = better
                    continue
                if code in CHANNEL_GONE or code in CONTENT_REFUSED:
                    raise Undeliverable(
                        code, f"Slack refused the post in {msg.channel}",
                        channel_ok=code in CONTENT_REFUSED,
                    ) from err  # fmt: skip
                raise

    async def _join(self, channel: str) -> bool:
        try:
            await self._call(self.client.conversations_join, channel=channel)
        except SlackApiError as err:
            log.warning("slack: cannot join %s (%s)", channel, error_code(err))
            return False
        log.info("slack: joined %s to post there", channel)
        return True

    async def _send(self, channel: str, msg: Outgoing, form: Form) -> Posted:
        ids = list(msg.ids)

        async def landed() -> str | None:
            return (await self.find_posted(channel, ids, msg.thread)).get(ids[0])

        if form.as_file:
            name = upload_name(msg.filename or ("message.md" if not msg.as_file else None), ids[0])
            resp = await self._call(
                self.client.files_upload_v2,
                landed=landed,
                channel=channel,
                content=msg.text,
                filename=name,
                title=msg.filename or "message.md",
                thread_ts=msg.thread,
            )
            if isinstance(resp, str):
                return Posted(resp)
            files = resp.get("files") or [resp.get("file") or {}]
            return Posted("file:" + str(files[0].get("id", "")))
        resp = await self._call(
            self.client.chat_postMessage,
            landed=landed,
            channel=channel,
            text=msg.text,
            thread_ts=msg.thread,
            mrkdwn=not form.plain,
            unfurl_links=False,
            unfurl_media=False,
            blocks=None if form.plain else (list(msg.blocks) or None),  # plain: text only
            metadata={"event_type": METADATA_TYPE, "event_payload": {"slug": msg.slug, "ids": ids}},
        )
        return Posted(resp if isinstance(resp, str) else str(resp["ts"]))

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

    async def delete(self, channel: str, ref: str) -> bool:
        """Delete one of our messages (a finished turn's status line); ``chat.delete`` is not a
        posting method, so it spends none of the channel's posting budget."""
        await self._call(self.client.chat_delete, channel=self.channel_id(channel), ts=ref)
        return True

    async def find_posted(
        self, channel: str, event_ids: Sequence[str], thread: str | None = None
    ) -> dict[str, str]:
        """Refs of our recent posts for these event ids (last :data:`LOOKUP_DAYS` days): a
        message's ``ts`` by its metadata, an upload's ``file:<id>`` by the token in its name.
        Each page read retries; a look-up that still fails raises (the caller must not guess)."""
        wanted = set(event_ids)
        tokens = {file_token(e): e for e in wanted}
        found: dict[str, str] = {}
        cursor: str | None = None
        oldest = f"{time.time() - LOOKUP_DAYS * 86400:.6f}"
        for _ in range(20):
            kwargs: dict[str, Any] = {
                "channel": self.channel_id(channel),
                "limit": 200,
                "include_all_metadata": True,
                "cursor": cursor,
            }
            if thread:
                method, kwargs["ts"] = self.client.conversations_replies, thread
            else:
                method, kwargs["oldest"] = self.client.conversations_history, oldest
            page = await self._call(method, attempts=self.lookup_attempts, **kwargs)
            for message in page.get("messages") or []:
                found.update(_matches(message, wanted, tokens))
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor or wanted <= set(found):
                break
        return found


def _matches(message: dict[str, Any], wanted: set[str], tokens: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    meta = message.get("metadata") or {}
    if meta.get("event_type") == METADATA_TYPE:
        for event_id in (meta.get("event_payload") or {}).get("ids") or []:
            if event_id in wanted:
                out[event_id] = str(message["ts"])
    for f in message.get("files") or []:
        for token in _TOKEN.findall(f"{f.get('name') or ''} {f.get('title') or ''}"):
            if token in tokens:
                out[tokens[token]] = "file:" + str(f.get("id", ""))
    return out
