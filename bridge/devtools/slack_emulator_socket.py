"""Socket Mode side of the Slack emulator: the websocket endpoint, envelope delivery and acks.

Slack's contract, mirrored here because the bridge's reliability depends on it: a connection
first receives `hello`; each request arrives as an envelope the client must ack with
`{"envelope_id": ...}`; an Events API envelope not acked in time is sent again (a new envelope id,
same `event_id`, `retry_attempt` + 1, up to three retries), while slash commands and interactive
payloads are never retried. Deliveries go through one queue drained by one task, so envelopes
reach the client in the order the test produced them, and wait while no socket is connected
(a test may post before the client has finished connecting).

An app may hold up to 10 connections at once ("Slack allows no more than 10 open WebSocket
connections per app at the same time"); each envelope goes to exactly one of them, picked at
random (seedable), and a retry goes to any open one, not necessarily the first's. A connection
Slack asked to reconnect (`disconnect`) only gets envelopes when no other is open. An 11th
connection gets `disconnect` / `too_many_websockets` instead of `hello` and is closed. The faults
(disconnect reasons, Socket Mode turned off, a deaf connection) are in
`slack_emulator_sockfaults`; each connection's record and what "live" means, in
`slack_emulator_conns`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from bridge.devtools import slack_emulator_scopes as slack_scopes
from bridge.devtools.slack_emulator_conns import Conn, ConnectionLog, abort_with_reset
from bridge.devtools.slack_emulator_model import ApiError, Delivery, Json
from bridge.devtools.slack_emulator_sockfaults import SocketFaults
from bridge.devtools.slack_emulator_state import WorkspaceState

log = logging.getLogger("bridge.devtools.slack_emulator")


class SocketHub(SocketFaults):
    """Owns the websocket connections and the delivery queue; lives on the emulator's loop."""

    def __init__(
        self,
        state: WorkspaceState,
        ack_timeout: float = 3.0,
        max_retries: int = 3,
        disconnect_grace: float = 1.0,
        seed: int | None = None,
        max_connections: int = 10,
        refresh_after: float | None = None,
    ) -> None:
        self.state = state
        self.refresh_after = refresh_after
        """Send each connection `refresh_requested` once it has been open this long (Slack
        does every few hours); None: never on its own."""
        self.socket_mode_enabled = True
        """False after `disable`: the app's Socket Mode is off (`link_disabled`)."""
        self.log = ConnectionLog()
        self._retiring_tasks: set[asyncio.Task[None]] = set()
        self.acks_to_lose = 0
        self.lost_ack_keys: set[int] = set()
        self.ack_timeout = ack_timeout
        self.max_retries = max_retries
        self.disconnect_grace = disconnect_grace
        self.max_connections = max_connections
        self.rng = random.Random(seed)
        self.ack_listeners: list[Callable[[Delivery, Json | None], None]] = []
        """Called (on the loop, without the lock) after each ack, e.g. to close a modal, and
        when a delivery is given up (then `delivery.gave_up` is set and the ack is None)."""
        self.ws_base = ""
        self.loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[int, bool]] | None = None
        self._cond: asyncio.Condition | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._conns: list[Conn] = []
        self._tickets: set[str] = set()

    # -- lifecycle (on the loop) ---------------------------------------------------------

    def bind(self, ws_base: str) -> None:
        """Attach to the running loop; `ws_base` is `ws://127.0.0.1:PORT/socket`."""
        self.loop = asyncio.get_running_loop()
        self.ws_base = ws_base
        self._queue = asyncio.Queue()
        self._cond = asyncio.Condition()
        self._pump_task = self.loop.create_task(self._pump(), name="slack-emulator-pump")

    async def close(self) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
        for conn in list(self._conns):
            self._ended(conn)
            abort_with_reset(conn.transport)
        self._conns.clear()

    # -- thread-safe entry points --------------------------------------------------------

    def issue_url(self) -> str:
        """A fresh `apps.connections.open` URL; the ticket is checked on connect."""
        if not self.socket_mode_enabled:
            raise ApiError("access_denied")  # Socket Mode is off: no URL (see sockfaults)
        ticket = uuid.uuid4().hex
        with self.state.lock:
            self._tickets.add(ticket)
        return f"{self.ws_base}?ticket={ticket}&app_id={self.state.app_id}"

    def submit(self, key: int, forced: bool = False) -> None:
        """Queue delivery `key` (from any thread); `forced` sends even if already acked."""
        if self.loop is None or self._queue is None:
            raise RuntimeError("the Slack emulator is not running")
        queue = self._queue
        self.loop.call_soon_threadsafe(queue.put_nowait, (key, forced))

    def emit(self, kind: str, payload: Json, accepts_response_payload: bool = False) -> Delivery:
        """Record a Socket Mode request and queue it for delivery (any thread)."""
        delivery = self.state.new_delivery(kind, payload, accepts_response_payload)
        self.submit(delivery.key)
        return delivery

    def emit_event(self, event: Json) -> Delivery:
        """Wrap `event` in the Events API `event_callback` outer payload and deliver it,
        unless the bot token lacks the event's scope: then Slack sends nothing, and the
        Delivery returned is recorded in `state.withheld` only (never sent, never retried)."""
        st = self.state
        auth: Json = {"enterprise_id": None, "team_id": st.team_id, "user_id": st.bot_user_id}
        auth.update(is_bot=True, is_enterprise_install=False)
        payload: Json = dict(
            token="emulator-verification-token", team_id=st.team_id, api_app_id=st.app_id,
            event=event, type="event_callback", event_id=st.new_event_id(),
            event_time=int(time.time()), authorizations=[auth], is_ext_shared_channel=False,
            event_context=f"4-emulator-{st.instance}",
        )  # fmt: skip
        if slack_scopes.event_withheld(st, event) is not None:
            withheld = Delivery(0, "events_api", payload, False)
            with st.lock:
                st.withheld.append(withheld)
                st.touch()
            return withheld
        return self.emit("events_api", payload)

    def run_soon(self, coro: Any) -> None:
        """Run a hub coroutine on the loop from any thread, without waiting for it."""
        if self.loop is None:
            raise RuntimeError("the Slack emulator is not running")
        asyncio.run_coroutine_threadsafe(coro, self.loop)

    def history(self, token: str | None = None) -> list[Json]:
        """Every connection's record (see :mod:`bridge.devtools.slack_emulator_conns`)."""
        with self.state.lock:
            return self.log.history(token)

    def overlaps(self, token: str | None = None) -> list[tuple[str, str]]:
        """Pairs of `token`'s connections that were live at the same time (none is right)."""
        with self.state.lock:
            return self.log.overlaps(token)

    def open_count(self) -> int:
        with self.state.lock:
            return sum(1 for c in self._conns if not c.closed)

    def connections(self) -> list[Json]:
        """Open connections: id, whether Slack asked it to reconnect, envelopes sent on it."""
        with self.state.lock:
            return [
                {"id": c.id, "retiring": c.retiring, "sent": c.sent, "deaf": c.deaf}
                for c in self._conns
                if not c.closed
            ]

    # -- websocket endpoint --------------------------------------------------------------

    async def handle_ws(self, request: web.Request) -> web.StreamResponse:
        """One Socket Mode connection. A connection past the app's limit is accepted and then
        told `disconnect` / `too_many_websockets` instead of `hello`, and closed: that is what
        Slack's clients see (python-slack-sdk #1940's wire logs), not a refused handshake."""
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.json_response({"ok": False, "error": "invalid_ticket"}, status=401)
        if not self.socket_mode_enabled:
            return web.json_response({"ok": False, "error": "link_disabled"}, status=403)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Conn(ws, request.transport, ticket, self.state.app_token)
        with self.state.lock:
            full = self.open_count() >= self.max_connections
            self.log.opened(conn, refused="too_many_websockets" if full else None)
            if not full:
                self._conns.append(conn)
            self.state.touch()
        if full:
            self.log.told(conn, "too_many_websockets")
            await self._refuse(conn)
            return ws
        hello = {
            "type": "hello",
            "num_connections": self.open_count(),
            "debug_info": {"host": "slack-emulator", "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.state.app_id},
        }
        refresh = None
        try:
            await ws.send_str(json.dumps(hello))
            await self._notify()
            if self.refresh_after is not None:
                refresh = asyncio.get_running_loop().call_later(
                    self.refresh_after, self._refresh_due, conn
                )
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(msg.data)
                elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        except ConnectionError:
            pass
        finally:
            if refresh is not None:
                refresh.cancel()
            self._ended(conn)
            with self.state.lock, contextlib.suppress(ValueError):
                self._conns.remove(conn)
                self.state.touch()
            await self._notify()
        return ws

    def _ended(self, conn: Conn) -> None:
        with self.state.lock:
            conn.closed = True
            self.log.closed(conn)
            self.state.touch()

    async def _refuse(self, conn: Conn) -> None:
        message: Json = {"type": "disconnect", "reason": "too_many_websockets"}
        message["debug_info"] = {"host": "slack-emulator"}
        try:
            await conn.ws.send_str(json.dumps(message))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.disconnect_grace):
                    async for _ in conn.ws:
                        pass  # anything it sends is ignored: it was never given hello
        except ConnectionError:
            pass
        finally:
            if not conn.ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await conn.ws.close(code=1000, message=b"too_many_websockets")
            self._ended(conn)

    def _on_text(self, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            log.warning("slack emulator: non-JSON socket message %r", data[:200])
            return
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        if not isinstance(envelope_id, str):
            log.warning("slack emulator: socket message without envelope_id %r", data[:200])
            return
        if self.lose_ack(envelope_id):
            return
        payload = message.get("payload")
        delivery = self.state.record_ack(
            envelope_id, payload if isinstance(payload, dict) else None
        )
        if delivery is None:
            log.warning("slack emulator: ack for unknown envelope %s", envelope_id)
            return
        if delivery.kind == "slash_commands" and isinstance(payload, dict) and payload:
            with self.state.lock:
                self.state.responses.append(
                    {"source": "ack", "command": delivery.payload.get("command"), "body": payload}
                )
                self.state.touch()
        for listener in self.ack_listeners:
            try:
                listener(delivery, payload if isinstance(payload, dict) else None)
            except Exception:  # a bad ack payload must not kill the socket's reader
                log.exception("slack emulator: ack listener failed for %s", envelope_id)

    # -- delivery ------------------------------------------------------------------------

    async def _notify(self) -> None:
        if self._cond is not None:
            async with self._cond:
                self._cond.notify_all()

    def _pick(self) -> Conn | None:
        """One open connection at random, preferring those not asked to reconnect."""
        open_ = [c for c in self._conns if not c.closed and not c.ws.closed]
        fresh = [c for c in open_ if not c.retiring]
        return self.rng.choice(fresh or open_) if open_ else None

    async def _pump(self) -> None:
        assert self._queue is not None and self._cond is not None
        while True:
            key, forced = await self._queue.get()
            try:
                while not await self._send(key, forced):
                    async with self._cond:
                        await self._cond.wait_for(lambda: self._pick() is not None)
            except Exception:  # one bad payload must not stop every later delivery
                log.exception("slack emulator: delivery %s failed", key)

    async def _send(self, key: int, forced: bool) -> bool:
        """Send one attempt of delivery `key`; False means "no usable socket, wait"."""
        with self.state.lock:
            d = self.state.deliveries[key]
            if d.acked and not forced:
                return True
        conn = self._pick()
        if conn is None:
            return False
        envelope_id = str(uuid.uuid4())
        with self.state.lock:
            attempt = d.attempts
            envelope = self._envelope(d, envelope_id, attempt)
            d.envelope_ids.append(envelope_id)
            d.connections.append(conn.id)
            d.attempts += 1
            conn.sent += 1
            self.state.envelope_index[envelope_id] = key
            self.state.touch()
        try:
            if not conn.deaf:  # a deaf one "gets" it: nothing is written, the ack times out
                await conn.ws.send_str(json.dumps(envelope))
        except (ConnectionError, RuntimeError):
            conn.closed = True
            with self.state.lock:
                d.attempts -= 1
                d.envelope_ids.remove(envelope_id)
                d.connections.pop()
                conn.sent -= 1
            return False
        assert self.loop is not None
        self.loop.call_later(self.ack_timeout, self._on_timeout, key, envelope_id)
        return True

    def _envelope(self, d: Delivery, envelope_id: str, attempt: int) -> Json:
        env: Json = {
            "envelope_id": envelope_id,
            "type": d.kind,
            "payload": d.payload,
            "accepts_response_payload": d.accepts_response_payload,
        }
        if d.kind == "events_api":
            env["retry_attempt"] = attempt
            env["retry_reason"] = "timeout" if attempt else ""
        return env

    def _on_timeout(self, key: int, envelope_id: str) -> None:
        with self.state.lock:
            d = self.state.deliveries[key]
            if d.acked or d.envelope_ids[-1] != envelope_id:
                return
            gave_up = d.kind != "events_api" or d.attempts > self.max_retries
            if gave_up:
                d.gave_up = True
                self.state.touch()
        if gave_up:
            for listener in self.ack_listeners:  # no ack is coming: tell them (ack None)
                listener(d, None)
            return
        if self._queue is not None:
            self._queue.put_nowait((key, False))
