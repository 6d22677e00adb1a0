"""The embedded chat backend: mirrored messages on the runner's stdout.

Used whenever no Slack tokens are configured. Each message is printed with the agent's slug in
front; steering comes from ``agentbridge send``. With an ``outbox`` file every post is also
appended there as a JSON line (flushed and fsynced before ``post`` returns), which makes the
console a backend that can be audited and settled after a crash like Slack can.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from bridge.chat.protocol import (
    ActionHandler,
    Attachment,
    ChatFigures,
    CommandHandler,
    Incoming,
    Outgoing,
    Posted,
)


class ConsoleBackend:
    name = "console"
    coalesce = False
    live_status = False

    def __init__(self, stream: TextIO | None = None, outbox: Path | None = None) -> None:
        self.stream = stream or sys.stdout
        self.outbox = outbox
        self._lock = threading.Lock()
        self._seq = 0
        self._inbox: asyncio.Queue[Incoming] = asyncio.Queue()
        self.channels: dict[str, str] = {}
        self.command_handler: CommandHandler | None = None
        self.on_action: ActionHandler | None = None  # the console has no buttons
        if outbox is not None and outbox.exists():
            _drop_torn_tail(outbox)
            self._seq = sum(1 for _ in outbox.open("rb"))

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def figures(self) -> ChatFigures:
        return ChatFigures()  # never rate-limited, no connection

    async def resolve_channels(self, wanted: Sequence[str]) -> list[str]:
        """Console channels are just names: nothing to resolve or join."""
        return []

    def _write(self, msg: Outgoing) -> Posted:
        with self._lock:
            self._seq += 1
            ref = str(self._seq)
            if self.outbox is not None:
                record = {
                    "ref": ref,
                    "slug": msg.slug,
                    "channel": msg.channel,
                    "event_id": msg.event_id,
                    "event_ids": list(msg.ids),
                    "text": msg.text,
                    "thread": msg.thread,
                }
                with self.outbox.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
            label = f"[{msg.slug}]"
            if msg.as_file:
                label += f" (file {msg.filename or 'output.txt'})"
            text = _plain(msg.text)
            body = text if "\n" not in text else "\n    " + text.replace("\n", "\n    ")
            self.stream.write(f"{label} {body}\n")
            self.stream.flush()
            return Posted(ref)

    async def post(self, msg: Outgoing) -> Posted:
        return self._write(msg)

    async def update(
        self, channel: str, ref: str, text: str, blocks: Sequence[Mapping[str, Any]] | None = None
    ) -> None:
        with self._lock:
            self.stream.write(f"[{channel}] (edit {ref}) {text}\n")
            self.stream.flush()

    async def react(self, channel: str, ref: str, emoji: str) -> None:
        return None

    async def reserve(self, channel: str) -> float:
        return 0.0  # the console is not rate limited

    async def delete(self, channel: str, ref: str) -> bool:
        return False  # printed lines stay printed: callers edit instead

    async def open_view(self, trigger_id: str, view: Mapping[str, Any]) -> None:
        return None  # no modals on a console: features fall back to a thread reply

    async def notify_user(self, channel: str, user: str, text: str) -> None:
        with self._lock:
            self.stream.write(f"[{channel}] (to {user}) {_plain(text)}\n")
            self.stream.flush()

    async def find_posted(
        self, channel: str, event_ids: Sequence[str], thread: str | None = None
    ) -> dict[str, str]:
        if self.outbox is None or not self.outbox.exists():
            return {}
        wanted = set(event_ids)
        found: dict[str, str] = {}
        with self.outbox.open(encoding="utf-8", errors="replace") as fh:
            for raw in fh:
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue  # a line torn by a crash mid-write was never acknowledged
                if record.get("channel") != channel:
                    continue
                for event_id in record.get("event_ids") or [record.get("event_id")]:
                    if event_id in wanted:
                        found[event_id] = str(record["ref"])
        return found

    def attachment(self, file_id: str, name: str, size: int, source: str) -> Attachment:
        """The console shares no files; one routed here cannot be fetched (the agent is told)."""

        async def fetch(limit: int) -> bytes:
            raise ValueError("the console backend cannot fetch files")

        return Attachment(file_id=file_id, name=name, size=size, fetch=fetch, source=source)

    async def receive(self) -> AsyncIterator[Incoming]:
        while True:
            yield await self._inbox.get()


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line a crash left half-written, so the next record starts on its own line."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


def _plain(mrkdwn: str) -> str:
    """A terminal shows text, not Slack's entity escapes."""
    return mrkdwn.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
