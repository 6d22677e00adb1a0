"""OAuth scopes in the Slack emulator: which scope each method needs, and what a token was granted.

Real Slack grants a bot token exactly the scopes of the app's manifest and answers a call
without its scope with ``{"ok": false, "error": "missing_scope", "needed": "chat:write",
"provided": "..."}`` (HTTP 200); a file's ``url_private`` fetched with a token lacking
``files:read`` answers the sign-in page (HTTP 200, HTML), not the file. Every response carries
the calling token's scopes in ``x-oauth-scopes``. The emulator does the same, so a scope the
manifest forgot fails the tests as it would fail a real workspace.

By default the emulator's bot token gets the scopes of ``deploy/slack-app-manifest.yaml`` (the
file people paste into Slack); :func:`manifest_scopes` reads it. When the emulator runs from an
installed package without the repository's ``deploy/`` (no manifest to read), it grants every
scope it knows (:data:`KNOWN`), as the most forgiving workspace would.

The table is Slack's method reference (https://api.slack.com/methods/<method>, "Required
scopes"), kept here on its own: the emulator stands for Slack and imports nothing from the
product. A method on a conversation needs the scope of its kind (``channels:*`` public,
``groups:*`` private). Events too: without ``channels:history`` the app is never sent the
messages of public channels (:func:`event_withheld`).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from bridge.devtools.slack_emulator_model import ApiError, Json
from bridge.devtools.slack_emulator_state import WorkspaceState

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "slack-app-manifest.yaml"

PLAIN: dict[str, str | None] = {
    "auth.test": None,
    "apps.connections.open": None,  # the app-level token's connections:write
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.delete": "chat:write",
    "chat.postEphemeral": "chat:write",
    "conversations.join": "channels:join",
    "reactions.add": "reactions:write",
    "reactions.remove": "reactions:write",
    "users.info": "users:read",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "files.info": "files:read",
    "files.list": "files:read",
    "views.open": None,
    "views.push": None,
    "views.update": None,
    "views.publish": None,
}
"""Methods whose scope does not depend on the conversation (None: no scope needed)."""

BY_KIND: dict[str, tuple[str, str]] = {
    "conversations.history": ("channels:history", "groups:history"),
    "conversations.replies": ("channels:history", "groups:history"),
    "conversations.info": ("channels:read", "groups:read"),
}
"""Methods on one conversation: (scope for a public channel, scope for a private one)."""

DOWNLOAD = "files:read"
"""What ``url_private`` / ``url_private_download`` need besides the bot token."""

KNOWN = frozenset(
    {s for s in PLAIN.values() if s}
    | {s for pair in BY_KIND.values() for s in pair}
    | {"channels:read", "groups:read", "app_mentions:read", "commands"}
)


def manifest_scopes(path: Path = MANIFEST) -> frozenset[str]:
    """The bot scopes of an app manifest (``oauth_config.scopes.bot``); :data:`KNOWN` when
    the file is not there (an installed package without the repository)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return KNOWN
    data = yaml.safe_load(text)
    return frozenset(str(s) for s in data["oauth_config"]["scopes"]["bot"])


def needed(state: WorkspaceState, method: str, params: Json) -> list[str]:
    """The scopes ``method`` needs for this call (a conversation's by its kind)."""
    if method in BY_KIND:
        public, private = BY_KIND[method]
        return [private if _is_private(state, params.get("channel")) else public]
    if method == "conversations.list":
        types = str(params.get("types") or "public_channel").split(",")
        kinds = (("public_channel", "channels:read"), ("private_channel", "groups:read"))
        return [scope for kind, scope in kinds if kind in types]
    scope = PLAIN.get(method)
    return [scope] if scope else []


def _is_private(state: WorkspaceState, ref: object) -> bool:
    with state.lock:
        try:
            return state.channel(str(ref or "")).is_private
        except ApiError:
            return str(ref or "").startswith("G")


def check(state: WorkspaceState, method: str, params: Json, token: str) -> None:
    """Raise Slack's ``missing_scope`` when the token lacks a scope this call needs."""
    granted = state.token_scopes.get(token)
    if granted is None:  # the app-level token: apps.connections.open only, checked apart
        return
    for scope in needed(state, method, params):
        if scope not in granted:
            raise ApiError("missing_scope", needed=scope, provided=",".join(sorted(granted)))


def header(state: WorkspaceState, token: str | None) -> str | None:
    """The ``x-oauth-scopes`` value for ``token`` (None for an unknown token)."""
    if token == state.app_token:
        return "connections:write"
    granted = state.token_scopes.get(token or "")
    return None if granted is None else ",".join(sorted(granted))


EVENT_SCOPES = {
    ("message", "channel"): "channels:history",
    ("message", "group"): "groups:history",
    ("app_mention", None): "app_mentions:read",
}
"""(event type, channel_type) -> the scope without which Slack does not send the event
(https://api.slack.com/events/message.channels, /message.groups, /app_mention); events not
listed are sent as before."""


def event_withheld(state: WorkspaceState, event: Json) -> str | None:
    """The scope the app's bot token lacks to receive ``event`` (then Slack never sends it)."""
    kind = str(event.get("type") or "")
    scope = EVENT_SCOPES.get((kind, event.get("channel_type"))) or EVENT_SCOPES.get((kind, None))
    with state.lock:
        granted = state.token_scopes[state.bot_token]
    return scope if scope is not None and scope not in granted else None
