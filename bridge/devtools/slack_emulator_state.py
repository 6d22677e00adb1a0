"""Workspace state of the Slack emulator: users, channels, messages, files, deliveries, faults.

Everything lives behind one re-entrant lock with a condition variable, because the aiohttp loop
(Web API calls, socket acks) and the test thread (acting as a human, inspecting) mutate and read it
concurrently; every mutation notifies the condition so `wait_for` wakes without fixed sleeps.
Values handed out to callers are deep copies, so a test can never race the server on a dict.
The records themselves and the request helpers live in `slack_emulator_model`.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from bridge.devtools.slack_emulator_model import (
    ApiError,
    Channel,
    Delivery,
    Fault,
    Json,
    ResponseTarget,
    UploadedFile,
    User,
)

Clock = Callable[[], float]


class WorkspaceState:
    """The single mutable model behind the Web API, the socket hub and the test helpers."""

    def __init__(
        self,
        team_name: str = "Emulator",
        bot_name: str = "agentbridge",
        clock: Clock = time.monotonic,
        bot_scopes: Iterable[str] = (),
    ) -> None:
        self.clock = clock
        """Drives rate limits and trigger expiry (not message ts): tests may pass a fake one."""
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
        self.token_scopes: dict[str, frozenset[str]] = {self.bot_token: frozenset(bot_scopes)}
        """Every bot token (the main one, and any a test minted) -> the scopes it was granted."""
        self.users: dict[str, User] = {
            self.bot_user_id: User(self.bot_user_id, bot_name, bot_name, is_bot=True)
        }
        self.channels: dict[str, Channel] = {}
        self.files: dict[str, UploadedFile] = {}
        self.ephemerals: list[Json] = []
        self.responses: list[Json] = []
        self.response_urls: dict[str, ResponseTarget] = {}
        self.triggers: dict[str, Json] = {}
        """trigger_id -> {"user", "issued" (clock time), "used"}: one use, 3 seconds."""
        self.views: dict[str, Json] = {}
        """view id -> {"id", "user", "state": open|closed, "view": the view, "errors"}."""
        self.block_state: dict[tuple[str, str, str], Json] = {}
        """(channel, message ts, user) -> that user's `state.values` for the message."""
        self.rate_limited: list[Json] = []
        """Every 429 served: {"method", "channel", "scope", "retry_after"}."""
        self.call_log: list[tuple[str, Json]] = []
        self.faults: dict[str, deque[Fault]] = {}
        self.deliveries: dict[int, Delivery] = {}
        self.withheld: list[Delivery] = []
        """Events never sent because the bot token lacks their scope (`slack_emulator_scopes`)."""
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

    def add_fault(self, method: str, fault: Fault) -> None:
        with self.lock:
            self.faults.setdefault(method, deque()).append(fault)

    def take_fault(self, method: str, channel: str | None = None) -> Fault | None:
        """The first fault of `method` that applies to `channel`, used up once (a lasting
        fault, `remaining=None`, stays). Faults apply in the order they were injected."""
        with self.lock:
            queue: deque[Fault] = self.faults.get(method) or deque()
            for fault in queue:
                if fault.channel is not None and fault.channel != channel:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        queue.remove(fault)
                return fault
            return None

    def clear_faults(self, channel: str | None = None) -> None:
        """Drop every fault (or only those bound to `channel`)."""
        with self.lock:
            for queue in self.faults.values():
                for fault in [f for f in queue if channel is None or f.channel == channel]:
                    queue.remove(fault)

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
