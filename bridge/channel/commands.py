"""``/agent status | restart SLUG | stop SLUG | compact SLUG | send SLUG TEXT``.

The same access rules as steering: a command naming an agent needs that agent's allowlist (or
the global one); ``status`` shows only what the caller may steer when allowlists are in use.
Replies are private (ephemeral) so raw commands and their answers never clutter a shared thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bridge.channel.inbound import may_steer
from bridge.config.model import Config
from bridge.fleet.reconcile import Reconciler
from bridge.lifecycle.activity import ActivityTracker
from bridge.lifecycle.limits import when
from bridge.lifecycle.steer import sanitize
from bridge.store.limits import load as limit_wait
from bridge.store.queue import Kind, PromptQueue

USAGE = "Usage: `/agent status | restart SLUG | stop SLUG | compact SLUG | send SLUG TEXT`"


class Commands:
    def __init__(
        self,
        config: Config,
        queue: PromptQueue,
        tracker: ActivityTracker,
        reconciler: Reconciler,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.config = config
        self.queue = queue
        self.tracker = tracker
        self.reconciler = reconciler
        self.wake = wake

    def update_config(self, config: Config) -> None:
        self.config = config

    def _may(self, slug: str, user: str) -> bool:
        agent = self.config.agent(slug)
        return agent is not None and may_steer(self.config, agent, user)

    async def run(self, user: str, channel: str, text: str) -> str:
        words = text.strip().split(None, 2)
        if not words:
            return USAGE
        verb = words[0].lower()
        if verb == "status":
            return self.status(user)
        if verb not in ("restart", "stop", "compact", "send") or len(words) < 2:
            return USAGE
        slug = words[1]
        if self.config.agent(slug) is None:
            return f"Unknown agent `{slug}`."
        if not self._may(slug, user):
            return f"Sorry, you are not allowed to control `{slug}`."
        if verb == "restart":
            return await asyncio.to_thread(self.reconciler.restart, slug)
        if verb == "stop":
            return await asyncio.to_thread(self.reconciler.stop, slug)
        if verb == "compact":
            self.queue.enqueue(
                slug, Kind.COMPACT, "/compact", source={"via": "command", "user": user}
            )
            self.wake()
            return f"`/compact` queued for `{slug}` (sent at its next idle moment)."
        body = sanitize(words[2] if len(words) > 2 else "").text
        if not body.strip():
            return "Nothing to send."
        self.queue.enqueue(
            slug, Kind.STEER, body, source={"via": "command", "user": user, "channel": channel}
        )
        self.wake()
        return f"Queued for `{slug}`."

    def status(self, user: str) -> str:
        lines = []
        for agent in self.config.agents:
            if not self._may(agent.slug, user):
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
