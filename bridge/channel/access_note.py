"""Saying so when an agent cannot be steered: a log line at start, one note in its channel.

With the Slack backend, an agent with no allowlist and no ``access: channel-members`` is closed
(see :mod:`bridge.config.access`). People in its channel would otherwise post and see nothing
happen, so the runner posts one note there naming the keys to set. "One" survives restarts: the
note is recorded in the state db (``agent_meta`` key ``access_note``) and posted again only after
the agent was opened and then closed again. The console backend has nobody to tell.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from bridge.chat.protocol import ChatBackend, Outgoing
from bridge.config import access
from bridge.config.model import Config, channel_for
from bridge.store.db import Store

log = logging.getLogger("agentbridge.chat")

KEY = "access_note"


def note_text(slug: str) -> str:
    return (
        f":lock: Nobody can steer `{slug}` from Slack: it has no `allowed_users`, and agents "
        f"fail closed. To steer it from here, {access.CLOSED_HINT} (anyone who can steer it "
        "runs shell commands on the runner's machine)."
    )


class AccessNotes:
    def __init__(self, store: Store, backend: ChatBackend) -> None:
        self.store = store
        self.backend = backend

    def _noted(self, slug: str) -> bool:
        rows = self.store.query("SELECT 1 FROM agent_meta WHERE slug = ? AND key = ?", (slug, KEY))
        return bool(rows)

    def _set(self, slug: str, noted: bool) -> None:
        with self.store.tx() as db:
            if noted:
                db.execute(
                    """INSERT OR REPLACE INTO agent_meta (slug, key, value, updated_at)
                       VALUES (?, ?, 'posted', ?)""",
                    (slug, KEY, time.time()),
                )
            else:
                db.execute("DELETE FROM agent_meta WHERE slug = ? AND key = ?", (slug, KEY))

    async def announce(self, config: Config, *, at_start: bool = False) -> None:
        """Log every closed agent (at start) and post its note once; forget opened ones."""
        if self.backend.name != "slack":
            return
        for agent in config.enabled_agents():
            closed = access.is_closed(config, agent)
            noted = await asyncio.to_thread(self._noted, agent.slug)
            if not closed:
                if noted:
                    await asyncio.to_thread(self._set, agent.slug, False)
                continue
            if at_start or not noted:
                log.warning(
                    "%s: nobody can steer it from Slack (no allowed_users; %s)",
                    agent.slug,
                    access.CLOSED_HINT,
                )
            if noted:
                continue
            channel = channel_for(agent)
            try:
                await self.backend.post(
                    Outgoing(agent.slug, channel, note_text(agent.slug), f"note:{uuid.uuid4()}")
                )
            except Exception as err:  # tried again at the next start or reload
                log.warning(
                    "%s: could not post the access note in %s: %s", agent.slug, channel, err
                )
                continue
            await asyncio.to_thread(self._set, agent.slug, True)
            log.info("%s: posted the closed-access note in %s", agent.slug, channel)
