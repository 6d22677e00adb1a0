"""Alerts in an agent's channel: usage limits, stuck and over-long turns, crash loops, silence.

The lifecycle decides *that* something needs a person (:class:`bridge.lifecycle.notice.Alert`);
this module decides how it reads: the text, the agent's last pane lines in a code block (always
through :func:`bridge.render.redact.redact`: a pane can show a token), and for a stuck turn the
buttons Interrupt, Interrupt and continue, Restart agent, Ignore.

Buttons are ours by the ``stuck:`` action-id prefix. A click must come from the agent's own
channel and be allowed by :func:`bridge.config.access.authorize` (``Act.ALERT``); anyone else
gets a private refusal and nothing happens. A used alert is edited to say who did what,
without its buttons, so it is used once.

Every button carries the alert's id and the id of the turn it was posted for (its ``value``):
a click acts only while that turn is still the agent's open turn, and only once per alert; an
old alert (its turn ended, a new one may be running) is refused with a private note, so its
Restart or Interrupt never hits a turn nobody judged stuck.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bridge.aio import TaskSet
from bridge.channel.inbound import Inbound
from bridge.chat.protocol import Action, ChatBackend, Outgoing
from bridge.config import access
from bridge.fleet.reconcile import Reconciler
from bridge.lifecycle.core import Lifecycle
from bridge.lifecycle.notice import Alert
from bridge.render.fit import cut, cut_tail
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


TEXT_LIMIT = 1000
"""The alert's own words in the message (the lifecycle writes them: short, but unbounded)."""
PANE_LIMIT = 1800
"""The pane lines shown: the end of the pane, which is where a stuck agent is waiting. With the
text, the fences and the notes of what was cut this keeps within a section's 3,000 characters
(https://docs.slack.dev/reference/block-kit/blocks/section-block)."""


def alert_text(alert: Alert) -> str:
    """The alert's text, then the last pane lines in a code block; each cut to fit, saying
    what was left out."""
    text = cut(alert.text, TEXT_LIMIT)
    if not alert.pane:
        return text
    pane = cut_tail(redact(alert.pane).replace("```", "'''"), PANE_LIMIT)
    return f"{text}\n```\n{pane}\n```"


KEYS = ("slug", "alert", "turn")


def button_value(slug: str, alert_id: str, turn: str | None) -> str:
    """What a stuck alert's buttons carry: the agent, the alert, and the turn it is about."""
    return json.dumps({"slug": slug, "alert": alert_id, "turn": turn or ""}, sort_keys=True)


def parse_value(value: str | None) -> tuple[str, str, str] | None:
    """(slug, alert id, turn id) from a button's value; None for anything else, such as the
    bare slug of an alert posted before buttons were tied to their turn."""
    try:
        data = json.loads(value or "")
    except ValueError:
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in KEYS):
        return None
    return data["slug"], data["alert"], data["turn"]


def stuck_blocks(
    text: str, slug: str, alert_id: str = "", turn: str | None = None
) -> tuple[dict[str, Any], ...]:
    """The alert's section and its buttons, built with ``slack_sdk.models`` (whose validators
    refuse what Slack would); ``text`` is cut to a section's 3,000 characters if need be."""
    value = button_value(slug, alert_id, turn)
    elements = [
        ButtonElement(
            text=PlainTextObject(text=label), action_id=f"{PREFIX}{verb}", value=value, style=style
        )
        for verb, label, style in BUTTONS
    ]
    section = SectionBlock(text=MarkdownTextObject(text=cut(text, 3000) or " "))
    actions = ActionsBlock(block_id=f"stuck-{slug}"[:255], elements=elements)
    return section.to_dict(), actions.to_dict()


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
        self._used: set[str] = set()
        """Alerts whose buttons were used (their message loses them too; this covers the
        second click of a double click that comes before that edit)."""
        lifecycle.on_alert.append(self.alert)

    def alert(self, alert: Alert) -> None:
        """From the lifecycle (on the loop): post it in the background."""
        self._tasks.spawn(self._post(alert))

    async def _post(self, alert: Alert) -> None:
        text = alert_text(alert)
        alert_id = uuid.uuid4().hex
        stuck = alert.kind == "stuck"
        blocks = stuck_blocks(text, alert.slug, alert_id, alert.turn) if stuck else ()
        msg = Outgoing(
            alert.slug,
            self.channel_of(alert.slug),
            text,
            f"note:{alert.kind}:{alert_id}",
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
        tied = parse_value(action.value)
        slug = tied[0] if tied else (action.value or "")
        agent = self.inbound.config.agent(slug)
        if verb not in DONE or agent is None or not self.inbound.belongs(agent, action.channel):
            return "This button does not belong to an agent of this channel."
        if not access.authorize(
            self.inbound.config, agent, action.user, access.Act.ALERT, access.Where.CHANNEL
        ):
            return f"Sorry, you are not allowed to control `{slug}`."
        stale = self._stale(slug, tied)
        if stale is not None:
            log.info("%s: stuck alert: %s by %s refused (%s)", slug, verb, action.user, stale)
            return stale
        assert tied is not None
        self._used.add(tied[1])
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

    def _stale(self, slug: str, tied: tuple[str, str, str] | None) -> str | None:
        """Why a click must not act (a note for the clicker), or None: a button acts only on
        the turn its alert was posted for, and only once. An old alert's Restart or Interrupt
        would otherwise hit whatever turn runs now."""
        if tied is None:
            return "This alert is from an older agentbridge and names no turn; nothing was done."
        _, alert_id, turn = tied
        if alert_id in self._used:
            return "This alert was used already; nothing more was done."
        if not turn or turn != self.lifecycle.stuck.turn_of(slug):
            return (
                f"This alert was about an earlier turn of `{slug}`, which has ended; nothing "
                "was done. A new alert comes if the current turn gets stuck."
            )
        return None
