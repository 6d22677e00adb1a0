"""The Slack emulator's records (users, channels, files, deliveries, faults) and request helpers.

They are plain dataclasses with a `to_api` that renders the shape Slack's Web API answers with,
kept apart from `WorkspaceState` (which owns the lock and the mutations) so each stays readable.
The parameter helpers are shared by every Web API method, because slack_sdk sends structured
params as JSON strings in forms but as objects in JSON bodies, and Slack accepts both.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

Json = dict[str, Any]


class ApiError(Exception):
    """A Slack-style failure: answered as ``{"ok": false, "error": code}`` with HTTP 200."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass
class User:
    id: str
    name: str
    display_name: str
    is_bot: bool = False

    def to_api(self, team_id: str) -> Json:
        """The `users.info` shape; only the fields an app typically reads."""
        profile = {"display_name": self.display_name, "real_name": self.display_name}
        return dict(
            id=self.id, team_id=team_id, name=self.name, real_name=self.display_name,
            deleted=False, is_bot=self.is_bot, is_app_user=False, tz="UTC", tz_offset=0,
            profile={**profile, "team": team_id},
        )  # fmt: skip

    def to_ref(self, team_id: str) -> Json:
        """The `user` object of interaction payloads (block_actions, view_submission)."""
        return {"id": self.id, "username": self.name, "name": self.name, "team_id": team_id}


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool
    members: set[str]
    created: int
    messages: list[Json] = field(default_factory=list)
    """Every message, top-level and replies alike, kept in `ts` order."""

    def to_api(self, bot_user_id: str) -> Json:
        """The `conversations.info`/`list` shape, `is_member` seen from the bot."""
        empty = {"value": "", "creator": "", "last_set": 0}
        return dict(
            id=self.id, name=self.name, name_normalized=self.name, is_channel=not self.is_private,
            is_group=self.is_private, is_im=False, is_private=self.is_private, is_archived=False,
            is_general=False, is_member=bot_user_id in self.members, created=self.created,
            num_members=len(self.members), topic=dict(empty), purpose=dict(empty),
        )  # fmt: skip


@dataclass
class UploadedFile:
    """A file, uploaded by the bot (files_upload_v2) or shared by a human.

    `shares` records every message that shares it ({channel, private, name, ts, thread_ts}):
    Slack's `shares` field is how a client finds the message of an upload whose answer it lost.
    """

    id: str
    filename: str
    length: int
    content: bytes | None = None
    title: str | None = None
    channels: list[str] = field(default_factory=list)
    user: str = ""
    created: int = 0
    mimetype: str = "text/plain"
    shares: list[Json] = field(default_factory=list)

    def urls(self, base_url: str, team_id: str) -> tuple[str, str]:
        """(url_private, url_private_download), shaped like files.slack.com's."""
        root = f"{base_url}files-pri/{team_id}-{self.id}/"
        name = quote(self.filename, safe="")
        return root + name, f"{root}download/{name}"

    def to_api(self, base_url: str, team_id: str = "T0001EMU") -> Json:
        private, download = self.urls(base_url, team_id)
        filetype = self.filename.rsplit(".", 1)[-1].lower() if "." in self.filename else "text"
        shares: Json = {}
        for s in self.shares:
            entry = {"ts": s["ts"], "channel_name": s["name"], "team_id": team_id}
            entry.update(share_user_id=self.user, reply_users=[], reply_count=0)
            if s.get("thread_ts"):
                entry["thread_ts"] = s["thread_ts"]
            kind = "private" if s["private"] else "public"
            shares.setdefault(kind, {}).setdefault(s["channel"], []).append(entry)
        return dict(
            id=self.id, created=self.created, timestamp=self.created, name=self.filename,
            title=self.title or self.filename, mimetype=self.mimetype, filetype=filetype,
            pretty_type=filetype.upper(), user=self.user, user_team=team_id, editable=False,
            size=len(self.content or b""), mode="hosted", is_external=False, external_type="",
            is_public=any(not s["private"] for s in self.shares), public_url_shared=False,
            display_as_bot=False, username="", url_private=private,
            url_private_download=download, permalink=f"{base_url}files/{self.user}/{self.id}",
            channels=[c for c in self.channels if c.startswith("C")],
            groups=[c for c in self.channels if c.startswith("G")], ims=[],
            comments_count=0, shares=shares,
        )  # fmt: skip


@dataclass
class Delivery:
    """One Socket Mode request; each (re)send gets a fresh envelope id, as Slack retries do."""

    key: int
    kind: str  # events_api | slash_commands | interactive
    payload: Json
    accepts_response_payload: bool
    envelope_ids: list[str] = field(default_factory=list)
    acked_envelope_ids: list[str] = field(default_factory=list)
    connections: list[str] = field(default_factory=list)
    """The connection each envelope (same index as `envelope_ids`) was sent on."""
    attempts: int = 0
    acked: bool = False
    ack_payload: Json | None = None
    gave_up: bool = False

    @property
    def event_id(self) -> str | None:
        value = self.payload.get("event_id")
        return value if isinstance(value, str) else None

    def summary(self) -> Json:
        event_type = self.payload.get("event", {}).get("type")
        return dict(
            type=self.kind, event_id=self.event_id, event_type=event_type, attempts=self.attempts,
            envelope_ids=list(self.envelope_ids), acked=self.acked, gave_up=self.gave_up,
            acked_envelope_ids=list(self.acked_envelope_ids), connections=list(self.connections),
            payload_type=self.payload.get("type"), ack_payload=copy.deepcopy(self.ack_payload),
            payload=copy.deepcopy(self.payload),
        )  # fmt: skip


@dataclass
class Fault:
    status: int  # 0 = connection reset, 200 = ok:false with `error`, else HTTP status
    retry_after: int
    error: str
    after: bool = False
    """Act first, then fail: the call took effect but its answer is lost (the ambiguous case)."""
    channel: str | None = None
    """Only calls naming this channel id fail; None: every call of the method."""
    remaining: int | None = 1
    """How many more calls fail; None: every one until the fault is cleared (a lasting fault)."""


@dataclass
class ResponseTarget:
    """Where a `response_url` answers: a slash command's channel or a clicked message."""

    channel: str
    user: str
    message_ts: str | None = None
    is_ephemeral: bool = False
    uses: int = 0


# -- request parameter helpers, shared by the Web API and the test helpers ------------------


def flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def int_param(params: Json, name: str, default: int) -> int:
    try:
        return int(params.get(name) or default)
    except (TypeError, ValueError):
        raise ApiError("invalid_arguments") from None


def json_param(value: Any) -> Any:
    """Structured params (blocks, metadata, files) are JSON strings in forms, objects in JSON."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ApiError("invalid_arguments") from None
    return value


def parse_metadata(value: Any) -> Json | None:
    if value in (None, ""):
        return None
    value = json_param(value)
    if not isinstance(value, dict) or not isinstance(value.get("event_type"), str):
        raise ApiError("invalid_metadata_format")
    return {"event_type": value["event_type"], "event_payload": value.get("event_payload") or {}}


def cursor_encode(key: str, value: str | int) -> str:
    """Opaque cursors shaped like Slack's, e.g. base64("next_ts:1512085861.000543")."""
    return base64.b64encode(f"{key}:{value}".encode()).decode()


def cursor_decode(cursor: Any, key: str) -> str | None:
    if not cursor:
        return None
    try:
        k, _, v = base64.b64decode(str(cursor)).decode().partition(":")
    except ValueError:
        raise ApiError("invalid_cursor") from None
    if k != key:
        raise ApiError("invalid_cursor")
    return v


def ts_key(value: Any) -> Decimal:
    """A `ts` as an exact number: "oldest=1795315661" must compare like Slack, not as text."""
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise ApiError("invalid_ts") from None


def top_level(msg: Json) -> bool:
    """In the channel's history (not only in a thread): roots, plain posts, broadcasts."""
    return msg.get("thread_ts") in (None, msg["ts"]) or msg.get("subtype") == "thread_broadcast"


def public(msg: Json, with_metadata: bool) -> Json:
    out = copy.deepcopy(msg)
    if not with_metadata:
        out.pop("metadata", None)
    return out


def thread_root(ch: Channel, thread_ts: Any) -> str:
    """The root ts for a reply; Slack rejects a `thread_ts` naming no message."""
    root = next((m for m in ch.messages if m["ts"] == str(thread_ts)), None)
    if root is None:
        raise ApiError("thread_not_found")
    return str(root.get("thread_ts") or root["ts"])
