"""Choosing the chat backend from the environment: Slack with both tokens, else the console."""

from __future__ import annotations

import logging
from pathlib import Path

from bridge.chat.console import ConsoleBackend
from bridge.chat.protocol import ChatBackend

log = logging.getLogger("agentbridge")


def make_backend(state_dir: Path, environ: dict[str, str]) -> ChatBackend:
    """Slack when both tokens are set; else the console, the embedded default."""
    bot, app = environ.get("SLACK_BOT_TOKEN"), environ.get("SLACK_APP_TOKEN")
    if bot and app:
        from bridge.chat.slack.backend import SlackBackend

        return SlackBackend(bot, app, environ.get("SLACK_API_URL") or None)
    if bot or app:
        log.warning(
            "runner: only one of SLACK_BOT_TOKEN / SLACK_APP_TOKEN is set; using the "
            "console backend"
        )
    return ConsoleBackend(outbox=state_dir / "console.jsonl")
