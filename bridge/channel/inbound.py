"""A person's chat message -> a steering prompt in the right agent's queue, exactly once.

Rules, in order:
- only channels (and their threads) that belong to an agent are listened to; bots are ignored
  unless the agent says ``allow_bots``; in a channel several agents share, a reply goes to the
  agent owning its thread, and a message that names nobody is refused with a note
  (:mod:`bridge.store.recipient`), never guessed;
- a redelivered message (Slack sends an event again when its ack was late or lost, and after a
  crash before the ack) is recognised by its channel and ``ts`` in the database, not in memory,
  so it is queued once across restarts too;
- only allowed users may steer (:mod:`bridge.config.access`: the allowlists, fail closed when
  there are none unless ``access: channel-members``); anyone else gets a private refusal with
  the reason, a warning is logged, and nothing reaches the agent;
- text starting with ``/`` is a CLI command: only the agent's ``slash_commands`` pass;
- the text is what the person meant (Slack markup undone), stripped of anything that could act
  as a keystroke; shared files are saved to the agent's inbox (:mod:`bridge.channel.files`) and
  listed in the prompt; a message too long to paste goes to a file the agent is told to read;
  in a channel with several people it is prefixed with the sender's name.
The message's receipt is kept (the backend acks the event) as soon as its row is committed, or
once it is deliberately ignored or refused; never before. Every store call here runs in a worker
thread (``asyncio.to_thread``, which keeps a routed event's joined transaction): with the
database slow or away, the event loop, and with it every other agent's hooks and Slack's acks,
goes on. Receipt is shown with 👀; the
lifecycle adds ✅ when the runtime confirms the prompt and ⚠️ with a reply when it could not be
delivered.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from bridge.channel.files import save_files, with_files
from bridge.chat.protocol import ChatBackend, Incoming, Outgoing
from bridge.config import access
from bridge.config.model import AgentConfig, Config
from bridge.lifecycle.steer import sanitize
from bridge.store.queue import Kind, PromptQueue, QueueItem, message_key
from bridge.store.recipient import Recipient, agents_in, recipient
from bridge.store.retry import is_store_error

log = logging.getLogger("agentbridge.inbound")

#: Longer messages are written to a file instead of pasted (a TUI paste of 100k characters is
#: slow, and some CLIs collapse large pastes into a placeholder the model never sees in full).
PASTE_LIMIT = 4000
RECEIVED, CONFIRMED, FAILED = "eyes", "white_check_mark", "warning"
HANDLE_ATTEMPTS = 4


def command_refusal(agent: AgentConfig, command: str) -> str:
    allowed = ", ".join(f"`{c}`" for c in agent.slash_commands) or "none"
    return (
        f"`{command}` is a CLI command `{agent.slug}` does not take from Slack (allowed: "
        f"{allowed}); nothing was sent. Add it to the agent's `slash_commands` in agents.yaml "
        "to allow it, or start the message with another character."
    )


class Inbound:
    def __init__(
        self,
        config: Config,
        queue: PromptQueue,
        backend: ChatBackend,
        inbox: Path,
        *,
        channel_ids: Callable[[], dict[str, str]],
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.config = config
        self.queue = queue
        self.backend = backend
        self.inbox = inbox
        self.channel_ids = channel_ids
        self.wake = wake
        self._seen: OrderedDict[str, None] = OrderedDict()

    def update_config(self, config: Config) -> None:
        self.config = config

    def recipient(self, channel: str, thread: str | None) -> Recipient:
        """Who a message in ``channel`` (a reply in ``thread``) is for (reads the store: a
        worker thread's call)."""
        return recipient(self.config, self.queue.store, channel, thread, self.channel_ids())

    def belongs(self, agent: AgentConfig, channel: str) -> bool:
        """Whether ``channel`` (a name or an id) is ``agent``'s."""
        return agent in agents_in(self.config, channel, self.channel_ids())

    def allowed(self, agent: AgentConfig, user: str) -> access.Decision:
        """Whether ``user`` may steer ``agent`` with a message in its channel (the only place
        inbound listens): :func:`bridge.config.access.authorize`, the one decision."""
        return access.authorize(self.config, agent, user, access.Act.STEER, access.Where.CHANNEL)

    def _kept(self, among: tuple[AgentConfig, ...], key: str) -> bool:
        """Queued before (by an earlier delivery of the same event, maybe by an earlier runner),
        for any agent of the channel: in a shared one, who a message is for can change between
        two deliveries of it (a reviewer finished meanwhile), and it must not be queued twice."""
        slugs = [a.slug for a in among]
        marks = ", ".join("?" for _ in slugs)
        rows = self.queue.store.query(
            f"SELECT 1 FROM prompt_queue WHERE dedupe_key = ? AND slug IN ({marks})",
            (key, *slugs),
        )
        return bool(rows)

    def _answered(self, key: str) -> bool:
        """Refused before by this runner (so a redelivery is not refused twice)."""
        if key in self._seen:
            return True
        self._seen[key] = None
        while len(self._seen) > 5000:
            self._seen.popitem(last=False)
        return False

    @staticmethod
    def _keep(msg: Incoming) -> None:
        if msg.receipt is not None:
            msg.receipt.keep()

    async def handle(self, msg: Incoming) -> QueueItem | None:
        """Queue ``msg`` for its agent, or ignore or refuse it; keep its receipt either way
        (an exception leaves it unsettled: the caller refuses it and the event comes again).

        A database error that may pass (:func:`~bridge.store.retry.is_store_error`) is tried
        again at once, a few times within a second. A Slack message is also held and retried
        for as long as the database is away by the consumer (``ChatBridge.run``); this short
        retry is what a routed event gets inside its row's attempt (not held: a failure costs
        one of the row's attempts). Trying again is safe: the dedupe key makes a prompt that
        was committed before the error a no-op."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(is_store_error),
            stop=stop_after_attempt(HANDLE_ATTEMPTS),
            wait=wait_exponential(multiplier=0.05, max=0.4),
            reraise=True,
        ):
            with attempt:
                item = await self._handle(msg)
        self._keep(msg)
        return item

    async def _handle(self, msg: Incoming) -> QueueItem | None:
        found = await asyncio.to_thread(self.recipient, msg.channel, msg.thread)
        agent = found.agent
        key = message_key(msg.channel, msg.ref)
        if agent is None:
            if found.why and not msg.is_bot and not self._answered(key):
                await self._unaddressed(msg, found)
            return None
        if msg.is_bot and not agent.allow_bots:
            return None
        if await asyncio.to_thread(self._kept, found.among, key):
            log.info("%s: message %s delivered again; already queued", agent.slug, msg.ref)
            return None
        if not self.allowed(agent, msg.user):
            if not self._answered(key):
                log.warning(
                    "%s: refused steering from %s (%s)",
                    agent.slug,
                    msg.user,
                    "no allowed_users: access is closed"
                    if access.is_closed(self.config, agent)
                    else "not in allowed_users",
                )
                await self.backend.notify_user(
                    msg.channel,
                    msg.user,
                    self.allowed(agent, msg.user).refusal("nothing was sent to it"),
                )
            return None
        text = sanitize(msg.text).text
        command = access.command_allowed(agent, text)
        if command is not None:
            if not self._answered(key):
                log.warning("%s: refused CLI command %s from %s", agent.slug, command, msg.user)
                self._keep(msg)
                await self._refuse(msg, command_refusal(agent, command))
            return None
        if msg.files:
            lines = await save_files(
                self.inbox, agent.slug, msg.ref, msg.files, self.config.inbound_file_max_bytes
            )
            text = with_files(text, lines)
        if not text.strip():
            self._keep(msg)
            await self._refuse(
                msg, "Nothing to send: the message is empty once control characters are removed."
            )
            return None
        if msg.shared and msg.sender:
            text = f"[{msg.sender}] {text}"
        if len(text) > PASTE_LIMIT:
            text = await asyncio.to_thread(self._to_file, agent.slug, msg, text)
        source = {
            "via": "slack",
            "channel": msg.channel,
            "ts": msg.ref,
            "thread_ts": msg.thread or msg.ref,
            "user": msg.user,
            "event_id": msg.event_id,
            "pasted": text,
        }
        item_id = await asyncio.to_thread(
            self.queue.enqueue, agent.slug, Kind.STEER, text, source=source, dedupe_key=key
        )
        self._keep(msg)  # committed: the event may be acknowledged now
        if item_id is None:
            return None  # the same message, delivered again after a reconnect
        self.wake()
        log.info(
            "%s: steering from %s queued (#%d, %d chars)", agent.slug, msg.user, item_id, len(text)
        )
        await self.backend.react(msg.channel, msg.ref, RECEIVED)
        return await asyncio.to_thread(self.queue.get, item_id)

    async def _unaddressed(self, msg: Incoming, found: Recipient) -> None:
        """A message in a shared channel that names no agent: the note goes to someone who
        could have steered one of them; anyone else gets the usual private refusal."""
        if any(self.allowed(a, msg.user) for a in found.among):
            log.info("%s: message %s names no agent of the channel; not sent", msg.channel, msg.ref)
            self._keep(msg)
            await self._refuse(msg, found.why or "")
        elif found.among:
            refused = self.allowed(found.among[0], msg.user)
            await self.backend.notify_user(
                msg.channel, msg.user, refused.refusal("nothing was sent to it")
            )

    def _to_file(self, slug: str, msg: Incoming, text: str) -> str:
        folder = self.inbox / slug
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / f"message-{msg.ref.replace('.', '-')}.md"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        who = f" from {msg.sender}" if msg.sender else ""
        return (
            f"A message{who} was too long to paste ({len(text)} characters). "
            f"Read it from {path} and act on it."
        )

    async def _refuse(self, msg: Incoming, why: str) -> None:
        await self.backend.react(msg.channel, msg.ref, FAILED)
        await self.backend.post(
            Outgoing(
                "",
                msg.channel,
                f":warning: {why}",
                f"refusal:{msg.channel}:{msg.ref}",
                thread=msg.thread or msg.ref,
            )
        )

    async def confirmed(self, item: QueueItem) -> None:
        if item.source.get("via") == "slack":
            await self.backend.react(str(item.source["channel"]), str(item.source["ts"]), CONFIRMED)

    async def failed(self, item: QueueItem, reason: str) -> None:
        if item.source.get("via") != "slack":
            return
        channel, ts = str(item.source["channel"]), str(item.source["ts"])
        await self.backend.react(channel, ts, FAILED)
        await self.backend.post(
            Outgoing(
                item.slug,
                channel,
                f":warning: Could not deliver this to `{item.slug}`: {reason}",
                f"failed:{item.id}",
                thread=str(item.source.get("thread_ts") or ts),
            )
        )
