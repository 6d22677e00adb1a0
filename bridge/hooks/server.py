"""The runner's end of the hook relay: a unix socket (mode 0600) in the state dir.

Every launch gets a fresh random token, exported into the agent's pane; a hook is accepted
only with the current token of the agent it claims to be. Tokens live in the state store, so
agents that outlive a runner restart keep reporting to the next runner, while a forged or
stale token (a previous launch, another box) is refused and logged.

Two paths. An ordinary hook is answered at once (the handler is synchronous and the client
gives up after two seconds). A hook sent with ``"wait": true`` (``agentbridge hook wait:EVENT``:
an agent's question or approval) is first seen by the same handler, then handed to the
``blocking`` coroutine, and the connection stays open until that returns the answer or the
client goes away (the CLI killed its hook, or the turn was interrupted), which cancels the wait.
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.hooks.client import MAX_MESSAGE
from bridge.store.db import Store

log = logging.getLogger("agentbridge.hooks")

MAX_LINE = MAX_MESSAGE


@dataclass(frozen=True, slots=True)
class HookMessage:
    slug: str
    event: str
    payload: dict[str, Any] = field(default_factory=dict)
    received_at: float = 0.0
    request_id: str = ""
    """A blocking hook's own id (the client mints it once, re-sends it on reconnect)."""


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
BlockingHandler = Callable[[HookMessage], Awaitable[dict[str, Any]]]
"""Answers a blocking hook: the reply's extra fields (``output``: the CLI's hook stdout)."""


class HookServer:
    def __init__(
        self,
        path: Path,
        tokens: TokenBook,
        handler: Handler,
        blocking: BlockingHandler | None = None,
    ) -> None:
        self.path = path
        self.tokens = tokens
        self.handler = handler
        self.blocking = blocking
        self.rejected = 0
        self._server: asyncio.AbstractServer | None = None
        self._held: set[asyncio.Task[Any]] = set()

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
            # Held (blocking) hooks end with the runner: their clients reconnect to the next.
            for task in list(self._held):
                task.cancel()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                line = await asyncio.wait_for(reader.readline(), timeout=5)
            except ValueError:  # over MAX_LINE: say so, or a blocking client would retry forever
                reply: dict[str, Any] = {"ok": False, "error": f"message over {MAX_LINE} bytes"}
            else:
                reply = self._handle(line)
            held = reply.pop("_hold", None)
            if isinstance(held, HookMessage) and self.blocking is not None:
                reply.update(await self._hold(held, reader))
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except asyncio.CancelledError:
            log.debug("a held hook was let go (runner stopping or the client left)")
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
        request_id = message.get("request_id")
        hook = HookMessage(
            slug,
            event,
            payload if isinstance(payload, dict) else {},
            time.time(),
            request_id if isinstance(request_id, str) else "",
        )
        try:
            status = self.handler(hook)
        except Exception:  # a bug in one consumer must not break every agent's hooks
            log.exception("%s: handling %s hook failed", slug, event)
            status = None
        reply: dict[str, Any] = {"ok": True, "status": status}
        if message.get("wait") is True:
            reply["_hold"] = hook
        return reply

    async def _hold(self, hook: HookMessage, reader: asyncio.StreamReader) -> dict[str, Any]:
        """Wait for the blocking handler, but give up when the client hangs up first."""
        assert self.blocking is not None
        answer = asyncio.ensure_future(self.blocking(hook))
        gone = asyncio.ensure_future(reader.read(1))  # b"" (EOF) when the client goes away
        task = asyncio.current_task()
        if task is not None:
            self._held.add(task)
        try:
            await asyncio.wait({answer, gone}, return_when=asyncio.FIRST_COMPLETED)
            if answer.done():
                try:
                    return answer.result()
                except Exception as err:  # the client denies the call (exit 2)
                    log.exception("%s: answering a %s hook failed", hook.slug, hook.event)
                    return {"ok": False, "error": f"{type(err).__name__}: {err}"}
            raise ConnectionResetError("the hook client left before the answer")
        finally:
            if task is not None:
                self._held.discard(task)
            for pending in (answer, gone):
                if not pending.done():
                    pending.cancel()
