"""The Slack bot scopes agentbridge needs, each tied to the Web API method or event that needs it.

A real workspace grants exactly the scopes of the app's manifest and refuses a call without its
scope (``{"ok": false, "error": "missing_scope", "needed": ..., "provided": ...}``); a file's
``url_private`` fetched without ``files:read`` answers Slack's sign-in page instead of the file.
So the manifest (``deploy/slack-app-manifest.yaml``) must hold every scope below and nothing
else: ``tests/unit/test_slack_scopes.py`` scans ``bridge/`` for every Slack method the code calls
and checks both directions, and ``agentbridge doctor`` compares :func:`required` with the scopes
the token was really granted (``auth.test``'s ``x-oauth-scopes`` header) and names the feature
each missing one breaks.

The scopes per method are Slack's method reference, one page per method:
https://api.slack.com/methods/auth.test, https://api.slack.com/methods/apps.connections.open,
https://api.slack.com/methods/chat.postMessage, https://api.slack.com/methods/chat.update,
https://api.slack.com/methods/chat.delete, https://api.slack.com/methods/chat.postEphemeral,
https://api.slack.com/methods/conversations.list, https://api.slack.com/methods/conversations.info,
https://api.slack.com/methods/conversations.join,
https://api.slack.com/methods/conversations.history,
https://api.slack.com/methods/conversations.replies, https://api.slack.com/methods/reactions.add,
https://api.slack.com/methods/users.info, https://api.slack.com/methods/views.open,
https://api.slack.com/methods/files.getUploadURLExternal,
https://api.slack.com/methods/files.completeUploadExternal (both made by slack_sdk's
``files_upload_v2``); the file download: https://api.slack.com/types/file#authentication
(``files:read``); events: https://api.slack.com/events/message.channels,
https://api.slack.com/events/message.groups, https://api.slack.com/events/app_mention; the slash
command: https://api.slack.com/scopes/commands.

A method on a conversation needs the scope of the conversation's kind: ``channels:*`` for a
public channel, ``groups:*`` for a private one. Agents may live in either, so both are required.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Need:
    """What one Slack method (or event, or other surface) requires, and what breaks without."""

    scopes: tuple[str, ...]
    feature: str
    """What a person loses when one of ``scopes`` is missing (for doctor's report)."""


METHODS: dict[str, Need] = {
    "auth.test": Need((), "the runner's start (who the bot is)"),
    "apps.connections.open": Need((), "Socket Mode (the app-level token's connections:write)"),
    "chat.postMessage": Need(("chat:write",), "posting the mirrored messages"),
    "chat.update": Need(("chat:write",), "editing messages (status line, answered questions)"),
    "chat.delete": Need(("chat:write",), "removing superseded messages"),
    "chat.postEphemeral": Need(("chat:write",), "private notes to one person (refusals)"),
    "conversations.list": Need(
        ("channels:read", "groups:read"), "finding `#name` channels (and doctor's check)"
    ),
    "conversations.info": Need(
        ("channels:read", "groups:read"), "checking a channel and who is in it"
    ),
    "conversations.join": Need(("channels:join",), "joining a public agent channel by itself"),
    "conversations.history": Need(
        ("channels:history", "groups:history"), "finding its own posts after a crash"
    ),
    "conversations.replies": Need(
        ("channels:history", "groups:history"), "finding its own thread replies after a crash"
    ),
    "reactions.add": Need(("reactions:write",), "the receipt reactions on steering messages"),
    "users.info": Need(("users:read",), "showing people's names instead of user ids"),
    "views.open": Need((), "the answer modals (Other…, Deny with a reason…)"),
    "files.getUploadURLExternal": Need(("files:write",), "uploading long output as a file"),
    "files.completeUploadExternal": Need(("files:write",), "uploading long output as a file"),
}
"""Every Web API method the product calls (directly, or slack_bolt / slack_sdk on its behalf:
``auth.test``, ``apps.connections.open``, and ``files_upload_v2``'s two methods)."""

OTHER: dict[str, Need] = {
    "file download (url_private)": Need(
        ("files:read",), "downloading files people share with a steering message"
    ),
    "/agent (slash command)": Need(("commands",), "the /agent command"),
}
"""What needs a scope without being a Web API method."""

EVENTS: dict[str, Need] = {
    "message.channels": Need(("channels:history",), "steering from public channels"),
    "message.groups": Need(("groups:history",), "steering from private channels"),
    "app_mention": Need(("app_mentions:read",), "mentions of the bot"),
}
"""The manifest's bot event subscriptions and the scope Slack requires to deliver each."""


def all_needs() -> dict[str, Need]:
    """Every method, event and surface, by name (events as ``event message.channels``)."""
    return {**METHODS, **OTHER, **{f"event {name}": need for name, need in EVENTS.items()}}


def required() -> frozenset[str]:
    """Every bot scope the product needs: exactly what the manifest must request."""
    return frozenset(s for need in all_needs().values() for s in need.scopes)


def users_of(scope: str) -> list[str]:
    """The methods / events that need ``scope``, for a message naming what breaks."""
    return [name for name, need in all_needs().items() if scope in need.scopes]


def missing(granted: Iterable[str]) -> dict[str, list[str]]:
    """Each required scope not in ``granted``, with the features it breaks (deduplicated, in
    table order)."""
    have = set(granted)
    out: dict[str, list[str]] = {}
    for need in all_needs().values():
        for scope in (s for s in need.scopes if s not in have):
            features = out.setdefault(scope, [])
            if need.feature not in features:
                features.append(need.feature)
    return out


def parse_header(value: str | None) -> frozenset[str] | None:
    """``x-oauth-scopes: chat:write,channels:read`` -> the scopes; None without the header."""
    if value is None:
        return None
    return frozenset(s.strip() for s in value.split(",") if s.strip())


def granted_in(headers: Mapping[str, Any]) -> frozenset[str] | None:
    """The scopes a Web API answer's headers say the token has (any header case); None when
    Slack did not say."""
    value = next((str(v) for k, v in headers.items() if k.lower() == "x-oauth-scopes"), None)
    return parse_header(value)


def summary(lacking: Mapping[str, list[str]]) -> str:
    """``files:read (downloading files ...), reactions:write (...)``: for doctor and the log."""
    parts = [f"{scope} ({'; '.join(features)})" for scope, features in sorted(lacking.items())]
    return ", ".join(parts)
