"""Alerts in an agent's channel: usage limits, stuck and over-long turns, crash loops, silence.

The lifecycle decides *that* something needs a person (:class:`bridge.lifecycle.notice.Alert`);
this module decides how it reads: the text, the agent's last pane lines in a code block (always
through :func:`bridge.render.redact.redact`: a pane can show a token), and for a stuck turn the
buttons Interrupt, Interrupt and continue, Restart agent, Ignore.

Buttons are ours by the ``stuck:`` action-id prefix. A click must come from the agent's own
channel and be allowed by :func:`bridge.config.access.authorize` (``Act.ALERT``); anyone else
gets a private refusal and nothing happens. A used alert is edited to say who did what,
without its buttons, so it is used once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

from bridge.aio import TaskSet
from bridge.channel.inbound import Inbound
from bridge.chat.protocol import Action, ChatBackend, Outgoing
from bridge.config import access
from bridge.fleet.reconcile import Reconciler
from bridge.lifecycle.core import Lifecycle
from bridge.lifecycle.notice import Alert
from bridge.render.redact import redact

log = logging.getLogger("agentbridge.alerts")

PREFIX = "stuck:"
BUTTONS = (
    ("interrupt", "Interrupt", "primary"),
    ("interrupt_continue", "Interrupt and continue", None),
    ("restart", "Restart agent", "danger"),
    ("ignore", "Ignore", None),
)
DONE = {
    "interrupt": "interrupted the turn",
    "interrupt_continue": "interrupted the turn and asked it to continue",
    "restart": "restarted the agent",
    "ignore": "ignored this alert",
}


def alert_text(alert: Alert) -> str:
    if not alert.pane:
        return alert.text
    pane = redact(alert.pane).replace("```", "'''")
    return f"{alert.text}\n```\n{pane}\n```"


def stuck_blocks(text: str, slug: str) -> tuple[dict[str, Any], ...]:
    elements = []
    for verb, label, style in BUTTONS:
        button: dict[str, Any] = {
            "type": "button",
            "action_id": f"{PREFIX}{verb}",
            "text": {"type": "plain_text", "text": label},
            "value": slug,
        }
        if style:
            button["style"] = style
        elements.append(button)
    return (
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}},
        {"type": "actions", "block_id": f"stuck-{slug}", "elements": elements},
    )


class Alerts:
    def __init__(
        self,
        backend: ChatBackend,
        lifecycle: Lifecycle,
        reconciler: Reconciler,
        inbound: Inbound,
        channel_of: Callable[[str], str],
    ) -> None:
        self.backend = backend
        self.lifecycle = lifecycle
        self.reconciler = reconciler
        self.inbound = inbound
        self.channel_of = channel_of
        self._tasks = TaskSet()
        lifecycle.on_alert.append(self.alert)

    def alert(self, alert: Alert) -> None:
        """From the lifecycle (on the loop): post it in the background."""
        self._tasks.spawn(self._post(alert))

    async def _post(self, alert: Alert) -> None:
        text = alert_text(alert)
        blocks = stuck_blocks(text, alert.slug) if alert.kind == "stuck" else ()
        msg = Outgoing(
            alert.slug,
            self.channel_of(alert.slug),
            text,
            f"note:{alert.kind}:{uuid.uuid4()}",
            thread=alert.thread,
            blocks=blocks,
        )
        try:
            await self.backend.post(msg)
        except Exception as err:  # an alert lost is logged, never a crash
            log.warning("%s: could not post a %s alert: %s", alert.slug, alert.kind, err)

    # -- clicks ------------------------------------------------------------------------------

    async def on_action(self, action: Action) -> str | None:
        verb = action.action_id.removeprefix(PREFIX)
        slug = action.value or ""
        agent = self.inbound.config.agent(slug)
        if verb not in DONE or agent is None or not self.inbound.belongs(agent, action.channel):
            return "This button does not belong to an agent of this channel."
        if not access.authorize(
            self.inbound.config, agent, action.user, access.Act.ALERT, access.Where.CHANNEL
        ):
            return f"Sorry, you are not allowed to control `{slug}`."
        log.info("%s: stuck alert: %s by %s", slug, verb, action.user)
        if verb in ("interrupt", "interrupt_continue"):
            self._tasks.spawn(self.lifecycle.interrupt(slug, then_continue=verb != "interrupt"))
        elif verb == "restart":
            await asyncio.to_thread(self.reconciler.restart, slug)
        else:
            self.lifecycle.stuck.ignore(slug)
        if action.message_ref:
            done = f":ballot_box_with_check: <@{action.user}> {DONE[verb]}."
            try:
                await self.backend.update(action.channel, action.message_ref, done)
            except Exception as err:
                log.warning("%s: could not update the stuck alert: %s", slug, err)
        return None
