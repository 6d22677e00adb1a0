"""Socket Mode faults the emulator can inject, as Slack produces them (a mixin of `SocketHub`).

- `disconnect` with a reason, then the socket closed after a grace period (Slack's own words:
  it sends the `disconnect` envelope and closes the connection a few seconds later):
  `refresh_requested` (routine: Slack rotates every connection after a few hours; also sent on
  its own to each connection open `refresh_after` seconds), `warning` (the same, earlier),
  `too_many_websockets` (see `SocketHub.handle_ws`) and `link_disabled`.
- `link_disabled` means the app's Socket Mode was turned off in its settings. After it the
  emulator keeps it off until `enable`: every open connection is told and closed,
  `apps.connections.open` answers `access_denied` (Slack documents no dedicated error), and a
  URL issued before is refused at the handshake. Events raised meanwhile are held and delivered
  once a connection opens again (real Slack would send them to a Request URL; the emulator has
  none, so it treats them as it treats events raised while no socket is open).
- `deafen`: a connection stays open, answers pings, but gets no envelopes: those routed to it
  are recorded as sent (on that connection) and never written, so their ack times out and
  Slack's retry sends them to whichever connection it picks next (maybe the deaf one again; if
  it is the only one, they pile up as retries until `max_retries`).
- `lose_acks`: the acks of the next N Events API deliveries never reach Slack (lost on the way,
  once per delivery), so Slack sends each again after the ack timeout, as for an ack never sent.
- `drop_all`: every socket lost at once, TCP reset, no close frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from bridge.devtools.slack_emulator_conns import Conn, ConnectionLog, abort_with_reset
from bridge.devtools.slack_emulator_state import WorkspaceState

DISCONNECT_REASONS = ("refresh_requested", "warning", "link_disabled", "too_many_websockets")


class SocketFaults:
    """The fault half of `SocketHub`; coroutines run on the emulator's loop (`run_soon`)."""

    state: WorkspaceState
    log: ConnectionLog
    disconnect_grace: float
    socket_mode_enabled: bool
    _conns: list[Conn]
    _retiring_tasks: set[asyncio.Task[None]]
    acks_to_lose: int
    lost_ack_keys: set[int]

    def _ended(self, conn: Conn) -> None:
        raise NotImplementedError

    async def _notify(self) -> None:
        raise NotImplementedError

    async def send_disconnect(
        self, reason: str, close_after: float | None, conn_id: str | None = None
    ) -> None:
        """Tell every open connection (or only `conn_id`) to reconnect, then close those
        still open after `close_after` (default `disconnect_grace`) seconds."""
        if reason not in DISCONNECT_REASONS:
            raise ValueError(f"Slack sends no disconnect reason {reason!r}")
        victims = [c for c in self._conns if not c.closed and conn_id in (None, c.id)]
        await asyncio.gather(*(self._retire(c, reason, close_after) for c in victims))

    async def _retire(self, conn: Conn, reason: str, close_after: float | None) -> None:
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "slack-emulator"}}
        with self.state.lock:
            conn.retiring = True
            self.log.told(conn, reason)
            self.state.touch()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await conn.ws.send_str(json.dumps(message))
        await asyncio.sleep(self.disconnect_grace if close_after is None else close_after)
        if not conn.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.close(code=1000, message=reason.encode())

    def _refresh_due(self, conn: Conn) -> None:
        """`refresh_after` elapsed for `conn` (a loop callback)."""
        if not conn.closed and not conn.retiring:
            task = asyncio.ensure_future(self._retire(conn, "refresh_requested", None))
            self._retiring_tasks.add(task)
            task.add_done_callback(self._retiring_tasks.discard)

    async def drop_all(self) -> None:
        """Abrupt loss of every socket: no close frame, TCP reset."""
        for conn in list(self._conns):
            self._ended(conn)
            abort_with_reset(conn.transport)
        await self._notify()

    def lose_ack(self, envelope_id: str) -> bool:
        """Whether the ack of `envelope_id` is lost (one of `acks_to_lose`, events only)."""
        with self.state.lock:
            key = self.state.envelope_index.get(envelope_id)
            d = self.state.deliveries.get(key) if key is not None else None
            if self.acks_to_lose <= 0 or d is None or d.kind != "events_api" or d.acked:
                return False
            if d.key in self.lost_ack_keys:
                return False  # one lost ack per delivery: each of them comes back once more
            self.lost_ack_keys.add(d.key)
            self.acks_to_lose -= 1
            self.state.touch()
            return True

    def deafen(self, conn_id: str | None = None) -> str:
        """Make `conn_id` (default: the newest open connection) deaf; returns its id."""
        with self.state.lock:
            open_ = [c for c in self._conns if not c.closed and conn_id in (None, c.id)]
            if not open_:
                raise LookupError(f"no open Socket Mode connection {conn_id or ''}".strip())
            conn = open_[-1]
            conn.deaf = True
            self.log.deafened(conn)
            self.state.touch()
            return conn.id

    async def disable(self, close_after: float | None = None) -> None:
        """Turn the app's Socket Mode off: `link_disabled` to every connection, then closed."""
        self.socket_mode_enabled = False
        await self.send_disconnect("link_disabled", close_after)

    def enable(self) -> None:
        """Turn Socket Mode back on: `apps.connections.open` works again."""
        with self.state.lock:
            self.socket_mode_enabled = True
            self.state.touch()
