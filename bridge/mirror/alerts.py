"""The one alert a mirror raises when a post is refused for good (skipped, never retried)."""

from __future__ import annotations

import logging

from bridge.chat.protocol import ChatBackend, Outgoing, Undeliverable
from bridge.store.ledger import Ledger

log = logging.getLogger("agentbridge.mirror")


async def alert_skipped(
    slug: str,
    channel: str,
    ledger: Ledger,
    backend: ChatBackend,
    alerted: set[str],
    ids: tuple[str, ...],
    refused: Undeliverable,
) -> None:
    """One alert per agent and reason: the log always, the channel when it takes posts."""
    log.warning("%s: skipped %d event(s): %s", slug, len(ids), refused)
    if refused.reason in alerted:
        return
    alerted.add(refused.reason)
    log.error(
        "%s: a post was refused for good (%s); it is skipped and counted in status"
        " (skipped_posts). Further refusals for this reason are logged as warnings only.",
        slug,
        refused,
    )
    if not refused.channel_ok:
        return
    alert_id = f"skipped:{ids[0]}"
    if ledger.is_posted(slug, alert_id):
        return
    text = (
        f":warning: agentbridge could not post a message here (Slack said "
        f"`{refused.reason}`); it was skipped. See the runner log."
    )
    note = Outgoing(slug, channel, text, alert_id)
    try:
        ledger.record_intents(slug, (alert_id,), note.channel, None)
        ledger.commit_posts(slug, (alert_id,), (await backend.post(note)).ref)
    except Exception as exc:  # best effort: the log has it
        log.warning("%s: could not post the skip alert (%s)", slug, exc)
