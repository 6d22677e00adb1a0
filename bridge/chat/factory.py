"""Choosing the chat backend from the environment: Slack with both tokens, else the console."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from bridge.chat.console import ConsoleBackend
from bridge.chat.protocol import ChatBackend

log = logging.getLogger("agentbridge")


def make_backend(
    state_dir: Path, environ: dict[str, str], pace: Mapping[str, float] | None = None
) -> ChatBackend:
    """Slack when both tokens are set (posting at ``pace``, the ``slack_pace`` config keys);
    else the console, the embedded default."""
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
        return SlackBackend(bot, app, environ.get("SLACK_API_URL") or None, pace=limits)
    if bot or app:
        log.warning(
            "runner: only one of SLACK_BOT_TOKEN / SLACK_APP_TOKEN is set; using the "
            "console backend"
        )
    return ConsoleBackend(outbox=state_dir / "console.jsonl")
