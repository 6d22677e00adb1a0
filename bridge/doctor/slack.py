"""The Slack part of ``agentbridge doctor``: tokens and their scopes, and the bot's membership of
each channel.

A bot that is not in an agent's channel cannot post there, and Slack says so only when the
first message fails; a revoked token looks the same as a network outage from inside the runner.
These checks make each of those one line. Read-only calls only (``apps.connections.open`` just
mints a Socket Mode URL that expires unused).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bridge.chat.slack import scopes
from bridge.config import access
from bridge.config.model import Config, channel_for
from bridge.doctor.check import Check


def _slack_error(err: Exception) -> str:
    response = getattr(err, "response", None)
    if response is not None:
        try:
            return str(response["error"])
        except (KeyError, TypeError):
            pass
    return f"{type(err).__name__}: {err}"


def _channel_names(client: Any) -> dict[str, dict[str, Any]]:
    """Every channel the bot can see, by ``#name`` (conversations.list is paginated)."""
    found: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        page = client.conversations_list(
            types="public_channel,private_channel",
            exclude_archived=True,
            limit=1000,
            cursor=cursor,
        )
        for channel in page.get("channels") or []:
            found["#" + str(channel.get("name"))] = channel
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return found


def is_loopback(url: str | None) -> bool:
    """Whether a Slack API base points at this machine (the demo's and the tests' emulator)."""
    host = urlparse(url or "").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _runner_info(state_dir: Path | None) -> dict[str, Any]:
    """The state dir's ``runner.json`` (written by the runner at start), or empty."""
    if state_dir is None:
        return {}
    try:
        info = json.loads((state_dir / "runner.json").read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def runner_slack(state_dir: Path | None) -> tuple[str | None, object]:
    """The ``SLACK_API_URL`` the state dir's runner was started with (``runner.json``, written
    by the runner) and its pid."""
    info = _runner_info(state_dir)
    url = info.get("slack_api_url")
    return (url if isinstance(url, str) and url else None), info.get("pid")


def uses_slack(environ: Mapping[str, str], state_dir: Path | None) -> bool:
    """Whether the runner talks to Slack: both tokens here (the runner's environment), or the
    runner said so in ``runner.json`` (``chat``; an older runner's ``slack_api_url``). The
    demo sets its emulator's tokens only in the runner's own environment, so a ``doctor`` or
    ``status`` in another shell has no tokens and must not judge by its own environment."""
    if access.slack_configured(environ):
        return True
    info = _runner_info(state_dir)
    if "chat" in info:
        return bool(info["chat"] == "slack")
    return runner_slack(state_dir)[0] is not None


def check_slack(
    config: Config | None, environ: Mapping[str, str], state_dir: Path | None = None
) -> list[Check]:
    """Both tokens work, and the bot is in every agent's channel (it cannot post otherwise).
    Without tokens here, the runner's own ``SLACK_API_URL`` (from ``runner.json``) still says
    whether it talks to the loopback Slack emulator (the demo), rather than "not configured"."""
    bot, app = environ.get("SLACK_BOT_TOKEN"), environ.get("SLACK_APP_TOKEN")
    if not bot and not app:
        url, pid = runner_slack(state_dir)
        if is_loopback(url):
            detail = (
                f"the runner (pid {pid}) uses the Slack emulator at {url} (loopback "
                "SLACK_API_URL, as the demo does); its tokens are only in its environment"
            )
            return [Check("slack", True, detail)]
        if url:
            detail = (
                f"the runner (pid {pid}) uses Slack at {url}; set SLACK_BOT_TOKEN and "
                "SLACK_APP_TOKEN here to check the tokens and channels"
            )
            return [Check("slack", True, detail)]
        return [Check("slack", True, "Slack: not configured (console backend)")]
    if not bot or not app:
        missing = "SLACK_BOT_TOKEN" if not bot else "SLACK_APP_TOKEN"
        return [Check("slack", False, f"{missing} is not set; Slack needs both tokens")]
    from slack_sdk import WebClient

    base = environ.get("SLACK_API_URL") or WebClient.BASE_URL
    base = base if base.endswith("/") else base + "/"
    client = WebClient(token=bot, base_url=base, timeout=15)
    try:
        auth = client.auth_test()
    except Exception as err:  # SlackApiError, URLError, timeouts: all mean "cannot reach"
        return [
            Check("slack", False, f"auth.test with SLACK_BOT_TOKEN failed: {_slack_error(err)}")
        ]
    where = f"the Slack emulator at {base}" if is_loopback(base) else base
    checks = [
        Check(
            "slack",
            True,
            f"bot {auth.get('user')} ({auth.get('user_id')}) in {auth.get('team')} via {where}",
        )
    ]
    try:
        WebClient(base_url=base, timeout=15).apps_connections_open(app_token=app)
        checks.append(Check("slack app token", True, "SLACK_APP_TOKEN opens Socket Mode"))
    except Exception as err:
        detail = f"apps.connections.open with SLACK_APP_TOKEN failed: {_slack_error(err)}"
        checks.append(Check("slack app token", False, detail))
    checks.append(check_scopes(getattr(auth, "headers", None) or {}))
    wanted: dict[str, list[str]] = {}
    for agent in config.enabled_agents() if config else []:
        wanted.setdefault(channel_for(agent), []).append(agent.slug)
    by_name: dict[str, dict[str, Any]] = {}
    if any(c.startswith("#") for c in wanted):
        try:
            by_name = _channel_names(client)
        except Exception as err:
            detail = f"conversations.list failed: {_slack_error(err)}"
            return [*checks, Check("slack channels", False, detail)]
    for channel, slugs in wanted.items():
        checks.append(_channel_check(client, channel, slugs, by_name, auth.get("user")))
    return checks


def check_scopes(headers: Mapping[str, Any]) -> Check:
    """The scopes the bot token was granted (``auth.test``'s ``x-oauth-scopes`` header)
    against every scope the product needs (:mod:`bridge.chat.slack.scopes`): each missing
    one named with what it breaks, since Slack says so only when that feature is first used
    (``missing_scope``, or the sign-in page for a file)."""
    granted = scopes.granted_in(headers)
    if granted is None:
        detail = "Slack did not list the token's scopes (no x-oauth-scopes header); not checked"
        return Check("slack scopes", True, detail, warning=True)
    lacking = scopes.missing(granted)
    if not lacking:
        return Check("slack scopes", True, f"the bot token has all {len(scopes.required())}")
    detail = (
        f"the bot token lacks {scopes.summary(lacking)}: add the missing scopes to the Slack app "
        "(OAuth & Permissions, or deploy/slack-app-manifest.yaml) and reinstall it"
    )
    return Check("slack scopes", False, detail)


def _channel_check(
    client: Any, channel: str, slugs: list[str], by_name: dict[str, dict[str, Any]], bot: Any
) -> Check:
    agent = slugs[0] if len(slugs) == 1 else None
    who = f" (agents {', '.join(slugs)})" if agent is None else ""
    if channel.startswith("#"):
        info = by_name.get(channel)
        if info is None:
            detail = (
                f"{channel}{who}: no such channel visible to the bot (create it, or "
                f"invite @{bot} if it is private)"
            )
            return Check("slack channel", False, detail, agent)
    else:
        try:
            info = client.conversations_info(channel=channel)["channel"]
        except Exception as err:
            return Check("slack channel", False, f"{channel}{who}: {_slack_error(err)}", agent)
    if not info.get("is_member"):
        detail = f"{channel}{who}: the bot is not a member (/invite @{bot} in {channel})"
        return Check("slack channel", False, detail, agent)
    return Check("slack channel", True, f"{channel}{who}: bot is a member", agent)
