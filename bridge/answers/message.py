"""An ask's message in the chat: posted once, found again after a crash, rewritten when done.

Exactly once across runner crashes: where the message goes (channel, thread) is written to the
ask's row before the post, and the message carries a stable event id (:func:`event_id`). A
runner killed after the chat took the post but before the row learned its ``ts`` leaves a row
with a channel and no message; the next runner finds the message by its id
(``ChatBackend.find_posted``) instead of posting it twice, and so does the rewrite when an
answer comes first (a click carries its message, which is then the one rewritten).

Owner: the event loop (the answers service); database calls go through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

from bridge.answers.blocks import ask_blocks, closed_blocks, closed_text, fallback_text
from bridge.answers.book import AskBook, AskRow
from bridge.chat.protocol import ChatBackend, Outgoing

log = logging.getLogger("agentbridge.answers")


def event_id(row: AskRow) -> str:
    """The ask message's identity in the chat (its metadata): the row and the CLI's own call
    id, the same for every runner that posts or looks for it."""
    return f"ask:{row.id}:{row.key}"


class AskMessages:
    def __init__(
        self,
        book: AskBook,
        backend: ChatBackend,
        channel_of: Callable[[str], str],
        thread_of: Callable[[str], str | None],
    ) -> None:
        self.book = book
        self.backend = backend
        self.channel_of = channel_of
        self.thread_of = thread_of
        self._posting: dict[int, asyncio.Lock] = {}

    def forget(self, ask_id: int) -> None:
        self._posting.pop(ask_id, None)

    async def ensure_posted(self, row: AskRow) -> AskRow:
        """The row once its message is in the chat (posted now, or found from before)."""
        if row.message_ref:
            return row
        async with self._posting.setdefault(row.id, asyncio.Lock()):
            fresh = await asyncio.to_thread(self.book.get, row.id) or row
            if fresh.message_ref:
                return fresh
            ref: str | None = None
            if fresh.channel:  # an earlier attempt got as far as the post: look first
                channel, thread = fresh.channel, fresh.thread
                ref = await self._find(row, channel, thread)
            else:
                channel, thread = self.channel_of(row.slug), self.thread_of(row.slug)
                await asyncio.to_thread(self.book.posting, row.id, channel, thread)
            if ref is None:
                blocks = tuple(ask_blocks(row.slug, row.id, row.ask))
                text = fallback_text(row.slug, row.ask)
                outgoing = Outgoing(
                    row.slug, channel, text, event_id(row), thread=thread, blocks=blocks
                )
                ref = (await self.backend.post(outgoing)).ref
            link = self.link(channel, ref, thread)
            await asyncio.to_thread(self.book.posted, row.id, channel, ref, thread, link)
            return await asyncio.to_thread(self.book.get, row.id) or row

    async def _find(self, row: AskRow, channel: str, thread: str | None) -> str | None:
        found = await self.backend.find_posted(channel, [event_id(row)], thread)
        return found.get(event_id(row))

    def link(self, channel: str, ref: str, thread: str | None) -> str:
        """A permalink to the message, built the way Slack's own permalinks are; "" when the
        backend has no addressable messages (the console)."""
        if self.backend.name != "slack":
            return ""
        cid = self.backend.channels.get(channel, channel)
        url = f"https://slack.com/archives/{cid}/p{ref.replace('.', '')}"
        return f"{url}?thread_ts={thread}&cid={cid}" if thread else url

    async def close(self, row: AskRow, outcome: str, at: tuple[str, str] | None = None) -> None:
        """Rewrite the message without its buttons, saying ``outcome``: the recorded message,
        else the clicked one (``at``: channel and ts), else the one found by its id."""
        try:
            fresh = await asyncio.to_thread(self.book.get, row.id)
            if fresh is None:
                return
            channel, ref = fresh.channel, fresh.message_ref
            if not ref and at is not None:
                channel, ref = at
            if not ref and channel:
                ref = await self._find(row, channel, fresh.thread)
            if not channel or not ref:
                return
            await self.backend.update(
                channel,
                ref,
                closed_text(row.slug, row.ask, outcome),
                blocks=closed_blocks(row.slug, row.ask, outcome),
            )
        except Exception as err:  # the answer is in; a stale message is not worth a crash
            log.warning("%s: could not update the message of #%d: %s", row.slug, row.id, err)

    async def say(self, row: AskRow, text: str) -> None:
        """A short note in the ask's thread (reminders, timeouts)."""
        fresh = await asyncio.to_thread(self.book.get, row.id) or row
        channel = fresh.channel or self.channel_of(row.slug)
        thread = fresh.thread or fresh.message_ref
        with contextlib.suppress(Exception):
            await self.backend.post(
                Outgoing(row.slug, channel, text, f"ask-note:{uuid.uuid4()}", thread=thread)
            )

    async def note(self, slug: str, text: str) -> None:
        """A note about ``slug`` with no row to hang it on (the ask could not be recorded):
        in the turn's thread of the agent's channel; best effort, never raises."""
        try:
            outgoing = Outgoing(
                slug,
                self.channel_of(slug),
                text,
                f"ask-note:{uuid.uuid4()}",
                thread=self.thread_of(slug),
            )
            await self.backend.post(outgoing)
        except Exception as err:
            log.warning("%s: could not post a note: %s", slug, err)
