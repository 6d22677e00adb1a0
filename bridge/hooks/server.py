"""The runner's end of the hook relay: a unix socket (mode 0600) in the state dir.

Every launch gets a fresh random token, exported into the agent's pane; a hook is accepted
only with the current token of the agent it claims to be. Tokens live in the state store, so
agents that outlive a runner restart keep reporting to the next runner, while a forged or
stale token (a previous launch, another box) is refused and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.store.db import Store

log = logging.getLogger("agentbridge.hooks")

MAX_LINE = 8 << 20


@dataclass(frozen=True, slots=True)
class HookMessage:
    slug: str
    event: str
    payload: dict[str, Any] = field(default_factory=dict)
    received_at: float = 0.0


class TokenBook:
    """Per-agent launch tokens, persisted so they survive runner restarts."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._tokens = {r[0]: r[1] for r in store.query("SELECT slug, token FROM hook_tokens")}

    def issue(self, slug: str) -> str:
        token = secrets.token_urlsafe(24)
        with self.store.tx() as db:
            db.execute(
                """INSERT INTO hook_tokens (slug, token, issued_at) VALUES (?, ?, ?)
                   ON CONFLICT(slug) DO UPDATE SET token = excluded.token,
                       issued_at = excluded.issued_at""",
                (slug, token, time.time()),
            )
        self._tokens[slug] = token
        return token

    def valid(self, slug: str, token: str) -> bool:
        current = self._tokens.get(slug)
        return bool(current) and secrets.compare_digest(current or "", token)


Handler = Callable[[HookMessage], str | None]


class HookServer:
    def __init__(self, path: Path, tokens: TokenBook, handler: Handler) -> None:
        self.path = path
        self.tokens = tokens
        self.handler = handler
        self.rejected = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a stale socket from a killed runner
        # 0600: only this user's agents connect. Set with chmod between bind and listen, not
        # with os.umask: the umask is process-wide and would change the mode of whatever the
        # reconciler's thread creates at that moment. Before listen() nobody can connect.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(self.path))
            os.chmod(self.path, 0o600)
            self._server = await asyncio.start_unix_server(self._serve, sock=sock, limit=MAX_LINE)
        except BaseException:
            sock.close()
            raise

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5)
            reply = self._handle(line)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError) as err:
            log.debug("hook connection dropped: %s", err)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _handle(self, line: bytes) -> dict[str, Any]:
        try:
            message = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "not JSON"}
        if not isinstance(message, dict):
            return {"ok": False, "error": "not an object"}
        slug = str(message.get("slug", ""))
        event = str(message.get("event", ""))
        if not self.tokens.valid(slug, str(message.get("token", ""))):
            self.rejected += 1
            log.warning("%s: rejected a %s hook with an unknown token", slug or "?", event)
            return {"ok": False, "error": "unknown token"}
        payload = message.get("payload")
        hook = HookMessage(slug, event, payload if isinstance(payload, dict) else {}, time.time())
        try:
            status = self.handler(hook)
        except Exception:  # a bug in one consumer must not break every agent's hooks
            log.exception("%s: handling %s hook failed", slug, event)
            status = None
        return {"ok": True, "status": status}
