"""Workspace state of the Slack emulator: users, channels, messages, files, deliveries, faults.

Everything lives behind one re-entrant lock with a condition variable, because the aiohttp loop
(Web API calls, socket acks) and the test thread (acting as a human, inspecting) mutate and read it
concurrently; every mutation notifies the condition so `wait_for` wakes without fixed sleeps.
Values handed out to callers are deep copies, so a test can never race the server on a dict.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

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
    id: str
    filename: str
    length: int
    content: bytes | None = None
    title: str | None = None
    channels: list[str] = field(default_factory=list)

    def to_api(self, base_url: str) -> Json:
        return dict(
            id=self.id, name=self.filename, title=self.title or self.filename,
            size=len(self.content or b""), mimetype="application/octet-stream",
            url_private=f"{base_url}files/{self.id}", channels=list(self.channels),
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
            acked_envelope_ids=list(self.acked_envelope_ids),
            ack_payload=copy.deepcopy(self.ack_payload),
        )  # fmt: skip


@dataclass
class Fault:
    status: int  # 0 = connection reset, 200 = ok:false with `error`, else HTTP status
    retry_after: int
    error: str
    after: bool = False
    """Act first, then fail: the call took effect but its answer is lost (the ambiguous case)."""


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


class WorkspaceState:
    """The single mutable model behind the Web API, the socket hub and the test helpers."""

    def __init__(self, team_name: str = "Emulator", bot_name: str = "agentbridge") -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        tag = secrets.token_hex(4)
        self.instance = tag.upper()
        self.team_id = "T0001EMU"
        self.team_name = team_name
        self.app_id = "AEMU0001"
        self.bot_user_id = "UBOTEMU01"
        self.bot_id = "BBOTEMU01"
        self.bot_token = f"xoxb-emulator-{tag}"
        self.app_token = f"xapp-emulator-{tag}"
        self.users: dict[str, User] = {
            self.bot_user_id: User(self.bot_user_id, bot_name, bot_name, is_bot=True)
        }
        self.channels: dict[str, Channel] = {}
        self.files: dict[str, UploadedFile] = {}
        self.ephemerals: list[Json] = []
        self.responses: list[Json] = []
        self.response_urls: dict[str, str] = {}
        """response_url id -> channel id of the slash command that issued it."""
        self.call_log: list[tuple[str, Json]] = []
        self.faults: dict[str, deque[Fault]] = {}
        self.deliveries: dict[int, Delivery] = {}
        self.envelope_index: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._last_ts_us = 0

    # -- ids -----------------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):04d}EMU"

    def new_ts(self) -> str:
        """Slack `ts`: seconds.micros, strictly increasing so it sorts and stays unique."""
        with self.lock:
            self._last_ts_us = max(int(time.time() * 1_000_000), self._last_ts_us + 1)
            us = self._last_ts_us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def new_event_id(self) -> str:
        return f"Ev{next(self._ids):06d}{self.instance}"

    def touch(self) -> None:
        """Wake `wait_for` callers; call with the lock held after any mutation."""
        self.changed.notify_all()

    # -- lookups (lock held by caller) ---------------------------------------------------

    def channel(self, ref: str) -> Channel:
        """Resolve a channel id, `#name` or bare name, as Slack accepts both for posting."""
        if ref in self.channels:
            return self.channels[ref]
        name = ref.removeprefix("#")
        for ch in self.channels.values():
            if ch.name == name:
                return ch
        raise ApiError("channel_not_found")

    def user(self, user_id: str) -> User:
        try:
            return self.users[user_id]
        except KeyError:
            raise ApiError("user_not_found") from None

    def message(self, ch: Channel, ts: str) -> Json:
        for msg in ch.messages:
            if msg["ts"] == ts:
                return msg
        raise ApiError("message_not_found")

    def thread_of(self, ch: Channel, root_ts: str) -> list[Json]:
        return [m for m in ch.messages if m["ts"] == root_ts or m.get("thread_ts") == root_ts]

    # -- mutations (lock held by caller) -------------------------------------------------

    def add_user(self, name: str, display_name: str | None = None) -> str:
        with self.lock:
            uid = self.new_id("U")
            self.users[uid] = User(uid, name, display_name or name)
            self.touch()
            return uid

    def add_channel(
        self, name: str, members: list[str], bot_member: bool = True, is_private: bool = False
    ) -> str:
        with self.lock:
            if any(c.name == name for c in self.channels.values()):
                raise ValueError(f"channel #{name} already exists")
            cid = self.new_id("G" if is_private else "C")
            people = set(members) | ({self.bot_user_id} if bot_member else set())
            self.channels[cid] = Channel(cid, name, is_private, people, int(time.time()))
            self.touch()
            return cid

    def store_message(self, ch: Channel, msg: Json) -> Json:
        """Insert a message and maintain the parent's thread summary like Slack does."""
        ch.messages.append(msg)
        ch.messages.sort(key=lambda m: m["ts"])
        root_ts = msg.get("thread_ts")
        if root_ts and root_ts != msg["ts"]:
            parent = next((m for m in ch.messages if m["ts"] == root_ts), None)
            if parent is not None:
                self._refresh_thread_summary(ch, parent)
        self.touch()
        return msg

    def _refresh_thread_summary(self, ch: Channel, parent: Json) -> None:
        replies = [m for m in self.thread_of(ch, parent["ts"]) if m["ts"] != parent["ts"]]
        parent["thread_ts"] = parent["ts"]
        parent["reply_count"] = len(replies)
        parent["reply_users"] = sorted({str(r.get("user")) for r in replies if r.get("user")})
        parent["latest_reply"] = replies[-1]["ts"] if replies else parent["ts"]

    def remove_message(self, ch: Channel, ts: str) -> Json:
        msg = self.message(ch, ts)
        ch.messages.remove(msg)
        root_ts = msg.get("thread_ts")
        if root_ts and root_ts != ts:
            parent = next((m for m in ch.messages if m["ts"] == root_ts), None)
            if parent is not None:
                self._refresh_thread_summary(ch, parent)
        self.touch()
        return msg

    def add_reaction(self, ch: Channel, ts: str, name: str, user: str) -> None:
        msg = self.message(ch, ts)
        reactions: list[Json] = msg.setdefault("reactions", [])
        entry = next((r for r in reactions if r["name"] == name), None)
        if entry is None:
            entry = {"name": name, "users": [], "count": 0}
            reactions.append(entry)
        if user in entry["users"]:
            raise ApiError("already_reacted")
        entry["users"].append(user)
        entry["count"] = len(entry["users"])
        self.touch()

    def remove_reaction(self, ch: Channel, ts: str, name: str, user: str) -> None:
        msg = self.message(ch, ts)
        reactions: list[Json] = msg.get("reactions", [])
        entry = next((r for r in reactions if r["name"] == name), None)
        if entry is None or user not in entry["users"]:
            raise ApiError("no_reaction")
        entry["users"].remove(user)
        entry["count"] = len(entry["users"])
        if not entry["users"]:
            reactions.remove(entry)
        if not reactions:
            msg.pop("reactions", None)
        self.touch()

    # -- fault injection -----------------------------------------------------------------

    def add_fault(self, method: str, fault: Fault, times: int) -> None:
        with self.lock:
            self.faults.setdefault(method, deque()).extend(fault for _ in range(times))

    def take_fault(self, method: str) -> Fault | None:
        with self.lock:
            queue = self.faults.get(method)
            return queue.popleft() if queue else None

    # -- deliveries ----------------------------------------------------------------------

    def new_delivery(self, kind: str, payload: Json, accepts_response_payload: bool) -> Delivery:
        with self.lock:
            key = len(self.deliveries) + 1
            d = Delivery(key, kind, payload, accepts_response_payload)
            self.deliveries[key] = d
            self.touch()
            return d

    def record_ack(self, envelope_id: str, payload: Json | None) -> Delivery | None:
        with self.lock:
            key = self.envelope_index.get(envelope_id)
            if key is None:
                return None
            d = self.deliveries[key]
            d.acked = True
            d.acked_envelope_ids.append(envelope_id)
            if payload is not None:
                d.ack_payload = payload
            self.touch()
            return d
