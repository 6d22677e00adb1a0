"""A person's chat message -> a steering prompt in the right agent's queue, exactly once.

Rules, in order:
- only channels (and their threads) that belong to an agent are listened to; bots are ignored
  unless the agent says ``allow_bots``;
- a redelivered event (same ``event_id``, or same channel and ``ts``) is queued once;
- only allowed users may steer: the agent's ``allowed_users`` plus the global list (when both
  lists are empty, channel membership is the access control); anyone else gets a private
  refusal and nothing reaches the agent;
- the text is what the person meant (Slack markup undone), stripped of anything that could act
  as a keystroke; a message too long to paste goes to a file the agent is told to read; in a
  channel with several people it is prefixed with the sender's name.
Receipt is acknowledged with 👀; the lifecycle adds ✅ when the runtime confirms the prompt and
⚠️ with a reply when it could not be delivered.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from bridge.chat.protocol import ChatBackend, Incoming, Outgoing
from bridge.config.model import AgentConfig, Config, channel_for
from bridge.lifecycle.steer import sanitize
from bridge.store.queue import Kind, PromptQueue, QueueItem

log = logging.getLogger("agentbridge.inbound")

#: Longer messages are written to a file instead of pasted (a TUI paste of 100k characters is
#: slow, and some CLIs collapse large pastes into a placeholder the model never sees in full).
PASTE_LIMIT = 4000
RECEIVED, CONFIRMED, FAILED = "eyes", "white_check_mark", "warning"


def may_steer(config: Config, agent: AgentConfig, user: str) -> bool:
    """The agent's allowlist plus the global one; both empty = channel membership decides."""
    allow = set(agent.allowed_users) | set(config.allowed_users)
    return not allow or user in allow


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

    def agent_for(self, channel: str) -> AgentConfig | None:
        ids = self.channel_ids()
        for agent in self.config.enabled_agents():
            wanted = channel_for(agent)
            if channel in (wanted, ids.get(wanted)):
                return agent
        return None

    def allowed(self, agent: AgentConfig, user: str) -> bool:
        return may_steer(self.config, agent, user)

    def _duplicate(self, key: str) -> bool:
        if key in self._seen:
            return True
        self._seen[key] = None
        while len(self._seen) > 5000:
            self._seen.popitem(last=False)
        return False

    async def handle(self, msg: Incoming) -> QueueItem | None:
        agent = self.agent_for(msg.channel)
        if agent is None:
            return None
        if msg.is_bot and not agent.allow_bots:
            return None
        if msg.event_id and self._duplicate(f"ev:{msg.event_id}"):
            return None
        if self._duplicate(f"ts:{msg.channel}:{msg.ref}"):
            return None
        if not self.allowed(agent, msg.user):
            log.warning("%s: refused steering from %s (not in allowed_users)", agent.slug, msg.user)
            await self.backend.notify_user(
                msg.channel,
                msg.user,
                f"Sorry, you are not allowed to steer `{agent.slug}`; nothing was sent to it.",
            )
            return None
        text = sanitize(msg.text).text
        if not text.strip():
            await self._refuse(
                msg, "Nothing to send: the message is empty once control characters are removed."
            )
            return None
        if msg.shared and msg.sender:
            text = f"[{msg.sender}] {text}"
        if len(text) > PASTE_LIMIT:
            text = self._to_file(agent.slug, msg, text)
        source = {
            "via": "slack",
            "channel": msg.channel,
            "ts": msg.ref,
            "thread_ts": msg.thread or msg.ref,
            "user": msg.user,
            "pasted": text,
        }
        item_id = self.queue.enqueue(
            agent.slug, Kind.STEER, text, source=source, dedupe_key=f"slack:{msg.channel}:{msg.ref}"
        )
        if item_id is None:
            return None  # the same message, delivered again after a reconnect
        await self.backend.react(msg.channel, msg.ref, RECEIVED)
        log.info(
            "%s: steering from %s queued (#%d, %d chars)", agent.slug, msg.user, item_id, len(text)
        )
        self.wake()
        return self.queue.get(item_id)

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
