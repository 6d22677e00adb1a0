"""What the lifecycle tells the channel side about an agent that needs a person's eye.

The lifecycle may not talk to chat (package layering), and the channel side owns how a post
looks (redaction of pane lines, buttons); this record is the hand-over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Alert:
    slug: str
    kind: str
    """``limit``, ``limit_again``, ``limit_update``, ``limit_warning``, ``stuck``, ``max_turn``,
    ``crash_loop``, ``crash_loop_over``, ``no_signal``, ``no_signal_over``."""
    text: str
    pane: str = ""
    """The agent's last pane lines, raw (the channel side redacts them)."""
    thread: str | None = None
    """The thread of the agent's current turn, for alerts about that turn."""
    turn: str | None = None
    """The id of the turn the alert is about (:meth:`bridge.lifecycle.stuck.StuckWatch.turn_of`):
    its buttons act on that turn only, never on whatever runs when they are clicked."""


AlertSink = Callable[[Alert], None]
