"""Choosing the chat backend from the environment: Slack with both tokens, else the console.

The only place a raw backend is constructed, and it never leaves: whichever is made comes back
wrapped in :class:`~bridge.chat.redacting.RedactingBackend`, the one outbound chokepoint that
redacts every text (tests/unit/test_chokepoint.py holds the code base to that).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from bridge.chat.console import ConsoleBackend
from bridge.chat.protocol import ChatBackend
from bridge.chat.redacting import RedactingBackend

log = logging.getLogger("agentbridge")

DEAF_PROBE_ENV = "AGENTBRIDGE_SLACK_DEAF_PROBE_SECONDS"
"""Seconds between checks for a deaf Socket Mode connection (default 30; 0 turns them off)."""


def _seconds(environ: dict[str, str], name: str) -> float | None:
    raw = environ.get(name)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        log.warning("runner: %s=%r is not a number of seconds; using the default", name, raw)
        return None
    return max(0.0, value)


def make_backend(
    state_dir: Path, environ: dict[str, str], pace: Mapping[str, float] | None = None
) -> RedactingBackend:
    """Slack when both tokens are set (posting at ``pace``, the ``slack_pace`` config keys);
    else the console, the embedded default; always behind the redacting chokepoint."""
    return RedactingBackend(_raw_backend(state_dir, environ, pace))


def _raw_backend(
    state_dir: Path, environ: dict[str, str], pace: Mapping[str, float] | None
) -> ChatBackend:
    bot, app = environ.get("SLACK_BOT_TOKEN"), environ.get("SLACK_APP_TOKEN")
    if bot and app:
        from bridge.chat.slack.backend import SlackBackend
        from bridge.chat.slack.pacing import Pace

        limits = None
        if pace:
            limits = Pace(
                per_second=float(pace["per_second"]),
                burst=int(pace["burst"]),
                workspace_per_second=float(pace["workspace_per_second"]),
                workspace_burst=int(pace["workspace_burst"]),
            )
        return SlackBackend(
            bot, app, environ.get("SLACK_API_URL") or None, pace=limits,
            deaf_probe=_seconds(environ, DEAF_PROBE_ENV),
        )  # fmt: skip
    if bot or app:
        log.warning(
            "runner: only one of SLACK_BOT_TOKEN / SLACK_APP_TOKEN is set; using the "
            "console backend"
        )
    return ConsoleBackend(outbox=state_dir / "console.jsonl")
