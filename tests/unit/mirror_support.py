"""One AgentMirror in-process on a temp transcript: the real tailer, parser, router, SQLite
ledger, and whichever backend the test gives (the console, or the Slack backend on the
in-process emulator). No file watching: the test pumps."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any, cast

from bridge.chat.protocol import ChatBackend
from bridge.mirror.agent import AgentMirror
from bridge.mirror.routing import TurnRouter
from bridge.store.db import Store
from bridge.store.ledger import Ledger
from runtimes import LaunchContext, get_runtime


def assistant(i: int, text: str | None = None) -> str:
    return (
        json.dumps(
            {
                "type": "assistant",
                "uuid": str(uuid.uuid4()),
                "message": {
                    "id": f"msg_{i}",
                    "role": "assistant",
                    "content": [{"type": "text", "text": text or f"line {i}"}],
                    "usage": {"input_tokens": 1, "output_tokens": 1},
                },
            }
        )
        + "\n"
    )


def prompt(text: str) -> str:
    """A Claude user-prompt line, as the CLI writes it when a prompt is submitted."""
    return (
        json.dumps(
            {
                "type": "user",
                "uuid": str(uuid.uuid4()),
                "message": {"role": "user", "content": text},
            }
        )
        + "\n"
    )


class Harness:
    def __init__(
        self,
        tmp: Path,
        backend: Any,
        channel: str = "#mx",
        *,
        runtime: str = "claude",
        router: TurnRouter | None = None,
        name: str = "t.jsonl",
    ) -> None:
        self.tmp = tmp
        self.db = tmp / "state.db"
        self.path = tmp / name
        self.path.touch()
        self.runtime = runtime
        self.channel = channel
        self.store = Store(self.db)
        self.open(backend, router)

    def open(self, backend: Any, router: TurnRouter | None = None) -> AgentMirror:
        """A fresh mirror on the same database: what a restarted runner has."""
        self.ledger = Ledger(self.store)
        self.backend = backend
        self.mirror = AgentMirror(
            "mx",
            get_runtime(self.runtime),
            cast(Any, lambda: None),
            lambda: None,
            lambda: None,
            self.ledger,
            cast(ChatBackend, backend),
            self.channel,
            router=router,
        )
        self.mirror.current = self.ledger.follow("mx", str(self.path), None)
        return self.mirror

    def append(self, *lines: str | bytes) -> None:
        with self.path.open("ab") as fh:
            for line in lines:
                fh.write(line if isinstance(line, bytes) else line.encode())

    def pump(self) -> int:
        return asyncio.run(self.mirror.pump())

    def close(self) -> None:
        self.store.close()


_ = LaunchContext  # the mirror never asks for a launch context here
