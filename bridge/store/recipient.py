"""Which agent a person's message in a channel is for, when agents share that channel.

Most channels belong to one agent, and everything said there is for it. A channel may also be
shared: by agents configured with the same ``channel``, and always by the reviewers of one
template (one spawned agent per pull request, all in the template's channel). Then the first
agent in the config is not a safe guess: a message meant for one reviewer would steer another.
The rules, in order:

1. A reply in a thread belongs to the agent that owns the thread: the thread of one of its
   turns, a message it posted, its review header or its question. That holds whatever else
   runs in the channel, and it is why replying in the thread is the way to talk to one of
   several agents.
2. Otherwise the message is for the one agent of the channel that can still act. An ephemeral
   agent whose task is done (a finished reviewer) no longer counts, in its own thread or a
   channel of its own either: a message queued for it would wait for good, so the sender is
   told instead.
3. Otherwise nobody is picked (:attr:`Recipient.agent` is None) and :attr:`Recipient.why` says
   what to do instead: reply in the agent's thread or use ``/agent send SLUG TEXT``.

Reads only (indexed, one statement each), safe on the event loop like the queue's look-ups.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bridge.config.model import AgentConfig, Config, channel_for
from bridge.store.db import Store
from bridge.store.queue import message_key


@dataclass(frozen=True, slots=True)
class Recipient:
    agent: AgentConfig | None
    """The agent the message is for; None when the channel has none, or several and the
    message does not say which."""
    why: str | None = None
    """Set when the channel has agents but none could be picked: the note for the sender."""
    among: tuple[AgentConfig, ...] = ()
    """Every enabled agent of the channel (config order), whoever was picked."""


def agents_in(config: Config, channel: str, ids: Mapping[str, str]) -> list[AgentConfig]:
    """The enabled agents whose channel is ``channel`` (a name or an id), config order."""
    return [
        a
        for a in config.enabled_agents()
        if channel and channel in (channel_for(a), ids.get(channel_for(a)))
    ]


def thread_owner(store: Store, slugs: list[str], channel: str, thread: str) -> str | None:
    """Which of ``slugs`` owns the thread rooted at ``thread`` (a message ts) in ``channel``:
    the one that posted the root, or the one a person's root message was queued for."""
    marks = ", ".join("?" for _ in slugs)
    rows = store.query(
        f"""SELECT slug FROM turn_routes WHERE thread = ? AND slug IN ({marks})
            UNION SELECT slug FROM ledger WHERE chat_ref = ? AND slug IN ({marks})
            UNION SELECT slug FROM reviews WHERE header = ? AND slug IN ({marks})
            UNION SELECT slug FROM asks WHERE message_ref = ? AND slug IN ({marks})
            UNION SELECT slug FROM prompt_queue WHERE dedupe_key = ? AND slug IN ({marks})""",
        (thread, *slugs) * 4 + (message_key(channel, thread), *slugs),
    )
    owners = {str(r[0]) for r in rows}
    return next(iter(owners)) if len(owners) == 1 else None


def finished(store: Store, slugs: list[str]) -> set[str]:
    """Which of ``slugs`` are ephemeral agents whose one task is done."""
    marks = ", ".join("?" for _ in slugs)
    rows = store.query(
        f"SELECT slug FROM agents WHERE state = 'done' AND slug IN ({marks})", tuple(slugs)
    )
    return {str(r[0]) for r in rows}


def recipient(
    config: Config, store: Store, channel: str, thread: str | None, ids: Mapping[str, str]
) -> Recipient:
    """Who a message in ``channel`` (in ``thread``, when it is a reply) is for."""
    here = tuple(agents_in(config, channel, ids))
    if not here:
        return Recipient(None)
    by_slug = {a.slug: a for a in here}
    slugs = list(by_slug)
    owner: str | None = None
    if len(slugs) == 1:
        owner = slugs[0]
    elif thread:
        owner = thread_owner(store, slugs, channel, thread)
    done = finished(store, slugs)
    if owner is not None and owner not in done:
        return Recipient(by_slug[owner], among=here)
    if owner is not None:
        return Recipient(None, f"`{owner}` has finished its task; nothing was sent.", here)
    live = [a for a in here if a.slug not in done]
    if len(live) == 1:
        return Recipient(live[0], among=here)
    names = ", ".join(f"`{a.slug}`" for a in (live or here))
    why = (
        f"Several agents share this channel ({names}), and this message does not say which one "
        "it is for, so nothing was sent. Reply in the thread of the agent you mean, or use "
        "`/agent send SLUG TEXT`."
        if live
        else f"Every agent of this channel has finished its task ({names}); nothing was sent."
    )
    return Recipient(None, why, here)
