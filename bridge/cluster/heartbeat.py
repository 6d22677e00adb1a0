"""This runner's heartbeat, and the one-time notices when a host goes silent or comes back.

Every few seconds the runner writes its row in ``hosts``. With a shared store it also looks for
hosts silent for ``host_down_after_seconds``: the one runner whose conditional update claims a
silent host (:meth:`bridge.store.hosts.HostBook.claim_down`) posts a note in each of that
host's agents' channels, so the notice appears once however many runners are up. Steering
written meanwhile waits in ``inbound_events`` and is delivered when the host is back; its
runner says so in its agents' channels on its first heartbeat.

A database outage does not end the heartbeat (nor, with it, the runner): a beat that fails is
logged and the next one comes at the usual interval, so the host's row is fresh again as soon as
the database is back.

Each beat also counts the live hosts (those heard from within ``host_down_after_seconds``, this
one included) and hands the count to ``share``: the Slack backend budgets ``1/N`` of the
workspace's rate limits, so N runners together stay within them
(``docs/adr/0006-shared-slack-budget.md``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bridge.aio import wait_event
from bridge.config.model import Config
from bridge.store.db import Store
from bridge.store.hosts import HostBook
from bridge.store.retry import is_store_error

log = logging.getLogger("agentbridge.cluster")

Note = Callable[[str, str], None]
"""(slug, text): a short note in the agent's channel."""
Share = Callable[[int], None]
"""(live hosts): how many runners share the chat workspace now."""


def interval_for(timeout: float) -> float:
    """Beat often enough that a live host is never mistaken for a dead one."""
    return max(0.2, min(10.0, timeout / 4))


async def heartbeat(
    store: Store,
    host: str,
    version: str,
    config: Callable[[], Config],
    note: Note,
    stop: asyncio.Event,
    share: Share | None = None,
) -> None:
    book = HostBook(store)
    first = True
    while not stop.is_set():
        fleet = config()
        timeout = fleet.host_down_after_seconds
        try:
            await _beat(book, host, version, first, fleet, note)
            if share is not None and store.shared:
                share(
                    await asyncio.to_thread(live_hosts, book, host, fleet.host_down_after_seconds)
                )
        except Exception as err:
            if not is_store_error(err):
                raise
            log.warning(
                "cluster: heartbeat failed (%s); next in %.1f s", err, interval_for(timeout)
            )
        else:
            first = False
        await wait_event(stop, interval_for(timeout))


async def _beat(
    book: HostBook, host: str, version: str, first: bool, fleet: Config, note: Note
) -> None:
    """One beat, and the down/back notices it brings."""
    timeout = fleet.host_down_after_seconds
    back = await asyncio.to_thread(book.beat, host, version, starting=first)
    if back:
        log.info("cluster: this host (%s) was reported down; back now", host)
        for agent in fleet.agents:
            if agent.host == host:
                note(
                    agent.slug,
                    f":white_check_mark: Host `{host}` is back; messages "
                    "written while it was away are being delivered now.",
                )
    if book.store.shared:
        for row in await asyncio.to_thread(book.claim_down, host, timeout):
            since = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(row.last_seen))
            log.warning("cluster: host %s silent since %s; reporting it", row.host, since)
            for agent in fleet.agents:
                if agent.host == row.host:
                    note(
                        agent.slug,
                        f":warning: Host `{row.host}` has not been heard from since {since}: "
                        f"`{agent.slug}` is not supervised. Messages written here are kept "
                        "and delivered when the host is back.",
                    )


def live_hosts(book: HostBook, me: str, timeout: float) -> int:
    """Hosts heard from within ``timeout`` seconds, this one always counted."""
    return len({me} | {row.host for row in book.hosts() if row.age() < timeout})
