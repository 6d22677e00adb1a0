"""``/agent status | restart SLUG | stop SLUG | compact SLUG | send SLUG TEXT``.

Access is :func:`bridge.config.access.authorize` (the one decision, one rule per verb), judged
on the TARGET agent from wherever the command came: its allowlist (plus the global one), or,
for an agent with ``access: channel-members`` and no list, only from the agent's own channel
(running the command there is the only proof of membership). A refusal says why and is
logged. ``send`` obeys the agent's ``slash_commands`` like a message would. ``status`` lists
only what the caller may control. Replies are private (ephemeral) so raw commands and their
answers never clutter a shared thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from bridge.channel.inbound import command_refusal
from bridge.config import access
from bridge.config.access import Act
from bridge.config.model import Config, channel_for
from bridge.fleet.reconcile import Reconciler
from bridge.lifecycle.activity import ActivityTracker
from bridge.lifecycle.limits import when
from bridge.lifecycle.steer import sanitize
from bridge.store.limits import load as limit_wait
from bridge.store.queue import Kind, PromptQueue

log = logging.getLogger("agentbridge.chat")

USAGE = (
    "Usage: `/agent status | restart SLUG | stop SLUG | compact SLUG | send SLUG TEXT"
    " | review PR [TEMPLATE]`"
)


class Commands:
    def __init__(
        self,
        config: Config,
        queue: PromptQueue,
        tracker: ActivityTracker,
        reconciler: Reconciler,
        wake: Callable[[], None] = lambda: None,
        channel_ids: Callable[[], Mapping[str, str]] = dict,
    ) -> None:
        self.config = config
        self.channel_ids = channel_ids
        self.queue = queue
        self.tracker = tracker
        self.reconciler = reconciler
        self.wake = wake
        self.verbs: dict[str, Callable[[str, str, str], Awaitable[str]]] = {}
        """More verbs, added by the app (``review``): (user, channel, the rest) -> reply. Each
        applies the access rules itself, for the agent it acts on."""

    def update_config(self, config: Config) -> None:
        self.config = config

    def _may(self, slug: str, user: str, channel: str, act: Act) -> access.Decision:
        """:func:`bridge.config.access.authorize` for ``act`` on ``slug`` from ``channel``."""
        agent = self.config.agent(slug)
        if agent is None:
            return access.Decision(False, f"Unknown agent `{slug}`")
        wanted = channel_for(agent)
        where = access.place(channel, (wanted, self.channel_ids().get(wanted) or wanted))
        return access.authorize(self.config, agent, user, act, where)

    async def run(self, user: str, channel: str, text: str) -> str:
        words = text.strip().split(None, 2)
        if not words:
            return USAGE
        verb = words[0].lower()
        if verb == "status":
            return await asyncio.to_thread(self.status, user, channel)  # reads the store
        if verb in self.verbs:
            return await self.verbs[verb](user, channel, text.strip()[len(words[0]) :].strip())
        if verb not in ("restart", "stop", "compact", "send") or len(words) < 2:
            return USAGE
        slug = words[1]
        agent = self.config.agent(slug)
        if agent is None:
            return f"Unknown agent `{slug}`."
        decision = self._may(slug, user, channel, Act(verb))
        if not decision:
            log.warning(
                "%s: refused /agent %s from %s in %s (%s)",
                slug,
                verb,
                user,
                channel or "?",
                decision.reason,
            )
            return decision.refusal("nothing was done")
        if verb == "restart":
            return await asyncio.to_thread(self.reconciler.restart, slug)
        if verb == "stop":
            return await asyncio.to_thread(self.reconciler.stop, slug)
        if verb == "compact":
            await asyncio.to_thread(
                self.queue.enqueue,
                slug,
                Kind.COMPACT,
                "/compact",
                source={"via": "command", "user": user},
            )
            self.wake()
            return f"`/compact` queued for `{slug}` (sent at its next idle moment)."
        body = sanitize(words[2] if len(words) > 2 else "").text
        if not body.strip():
            return "Nothing to send."
        command = access.command_allowed(agent, body)
        if command is not None:
            log.warning("%s: refused CLI command %s from %s (/agent send)", slug, command, user)
            return command_refusal(agent, command)
        source = {"via": "command", "user": user, "channel": channel}
        await asyncio.to_thread(self.queue.enqueue, slug, Kind.STEER, body, source=source)
        self.wake()
        return f"Queued for `{slug}`."

    def status(self, user: str, channel: str = "") -> str:
        lines = []
        for agent in self.config.agents:
            if not self._may(agent.slug, user, channel, Act.STATUS):
                continue
            act = self.tracker.get(agent.slug)
            ctx = f", context {act.context_tokens // 1000}k" if act.context_tokens else ""
            queued = self.queue.counts(agent.slug).get("queued", 0)
            extra = f", {queued} queued" if queued else ""
            state = act.state if agent.enabled else "disabled"
            wait = limit_wait(self.queue.store, agent.slug)
            if state == "limited" and wait is not None and wait.continued_at is None:
                state = f"limited until {when(wait.resets_at, time.time())}"
            lines.append(f"• `{agent.slug}` ({agent.runtime}): {state}{ctx}{extra}")
        return "\n".join(lines) or "No agents you may control."
