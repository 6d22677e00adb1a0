"""A stuck alert's buttons act on the turn they were posted for, once (issue 20, item 6).

The suspicion, confirmed on 18679b4: the buttons carried only the slug, so an old alert's
Restart (or Interrupt, Ignore) acted on whatever turn ran when it was clicked. Here the real
:class:`StuckWatch` judges a turn stuck and the real :class:`Alerts` posts its buttons; the turn
ends, a new one starts, and the old alert's Restart is clicked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bridge.channel.alerts import Alerts
from bridge.chat.protocol import Action, Outgoing, Posted
from bridge.config.model import parse_config
from bridge.config.watchdog import WatchdogConfig
from bridge.lifecycle.activity import ActivityTracker
from bridge.lifecycle.notice import Alert
from bridge.lifecycle.stuck import StuckWatch


class Backend:
    name = "slack"

    def __init__(self) -> None:
        self.posts: list[Outgoing] = []
        self.updates: list[tuple[str, str]] = []

    async def post(self, msg: Outgoing) -> Posted:
        self.posts.append(msg)
        return Posted(f"100.{len(self.posts)}")

    async def update(
        self, channel: str, ref: str, text: str, blocks: Sequence[Any] | None = None
    ) -> None:
        self.updates.append((ref, text))


def values(msg: Outgoing) -> dict[str, str]:
    """Button value by verb (``stuck:restart`` -> its value)."""
    return {
        e["action_id"].removeprefix("stuck:"): e["value"]
        for b in msg.blocks
        for e in b.get("elements", ())
    }


def test_an_old_alerts_buttons_do_not_act_on_a_later_turn(tmp_path: Path) -> None:
    now = [1000.0]
    tracker = ActivityTracker(clock=lambda: now[0])
    restarts: list[str] = []
    interrupts: list[str] = []
    alerts_ref: list[Alerts] = []

    def sink(alert: Alert) -> None:
        alerts_ref[0].alert(alert)

    stuck = StuckWatch(
        tracker,
        None,  # type: ignore[arg-type]  # no pane is looked at: the turn is judged directly
        tmp_path,
        lambda slug: None,
        lambda slug: WatchdogConfig(stuck_after_minutes=1),
        sink,
        clock=lambda: now[0],
    )
    tracker.listeners.append(stuck.changed)

    async def interrupt(slug: str, then_continue: bool = False) -> bool:
        interrupts.append(slug)
        return True

    lifecycle = SimpleNamespace(stuck=stuck, interrupt=interrupt, on_alert=[])
    config = parse_config(
        f"agents:\n- slug: a\n  workdir: {tmp_path}\n  channel: '#a'\n  allowed_users: [UALICE]\n",
        tmp_path / "agents.yaml",
    )
    inbound = SimpleNamespace(config=config, belongs=lambda agent, channel: channel == "C1")
    reconciler = SimpleNamespace(restart=restarts.append)
    backend = Backend()
    alerts = Alerts(backend, lifecycle, reconciler, inbound, lambda slug: "#a")  # type: ignore[arg-type]
    alerts_ref.append(alerts)

    def click(verb: str, value: str, ts: str = "100.1") -> str | None:
        action = Action("UALICE", "C1", ts, f"stuck:{verb}", value)
        return asyncio.run(alerts.on_action(action))

    async def stuck_turn() -> Outgoing:
        tracker.hook("a", "UserPromptSubmit", {})  # a turn starts
        now[0] += 120
        stuck._judge("a")  # no progress for 2 min: stuck
        count = len(backend.posts)
        while len(backend.posts) == count:
            await asyncio.sleep(0.01)
        return backend.posts[-1]

    first = asyncio.run(stuck_turn())
    tracker.hook("a", "Stop", {})  # that turn ended by itself
    tracker.hook("a", "UserPromptSubmit", {})  # and a new one runs now
    for verb in ("restart", "interrupt", "interrupt_continue", "ignore"):
        note = click(verb, values(first)[verb])
        assert note and "earlier turn" in note, verb
    assert restarts == [] and interrupts == [] and not stuck.turns["a"].ignored

    # The current turn's own alert works, once.
    tracker.hook("a", "Stop", {})
    second = asyncio.run(stuck_turn())
    assert json.loads(values(second)["restart"])["turn"] == stuck.turn_of("a")
    assert click("restart", values(second)["restart"], "100.2") is None
    assert restarts == ["a"]
    again = click("interrupt", values(second)["interrupt"], "100.2")
    assert again and "used already" in again and interrupts == []
    # A bare slug (an alert from before buttons named their turn) acts on nothing.
    legacy = click("restart", "a")
    assert legacy and "names no turn" in legacy and restarts == ["a"]
