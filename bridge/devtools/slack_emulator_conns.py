"""Socket Mode connections as the emulator keeps them: one record per websocket, and a history.

The history exists so a test can prove the property that matters to a runner: at no time were
two of its connections *live*. Definitions, precise because the proof depends on them:

- A connection is **live** from the moment the emulator sends it `hello` (from then on Slack may
  route envelopes to it) until the emulator sees it end: the client's close frame arrives, or
  its TCP connection drops, or the emulator closes it. Nothing else ends it: a connection Slack
  told to `disconnect` still counts as live until it closes (Slack keeps routing to a
  registered connection, and a client that opens the new one before closing the old holds two);
  a deaf connection counts as live too (it is open, and it may start hearing again).
- A connection refused with `too_many_websockets` is never sent `hello` and never gets an
  envelope: it is recorded (`refused`) but never live.
- Order, not wall time, decides overlap: every open and close takes the next number of one
  counter (`opened_seq`, `closed_seq`), under the workspace lock, on the emulator's loop, so
  two intervals overlap exactly when one opened before the other closed. Monotonic times are
  recorded too (`opened_at`, `closed_at`), for people reading a failure.

History is kept per app token (the token that called `apps.connections.open` for the URL), so
two runners given different app tokens of one app are told apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct
import time
from dataclasses import dataclass, field

from aiohttp import web

from bridge.devtools.slack_emulator_model import Json

_conn_ids = itertools.count(1)


def abort_with_reset(transport: asyncio.BaseTransport | None) -> None:
    """Close a TCP connection with RST instead of FIN, like a dropped network path.

    slack_sdk's builtin client only notices an orderly FIN on its next ping (several seconds),
    but an RST fails its blocking `recv` at once, which is what a real outage looks like.
    """
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if isinstance(transport, asyncio.Transport):
        transport.abort()
    else:
        transport.close()


@dataclass(eq=False)
class Conn:
    """One websocket. `deaf`: open, answers pings, but envelopes routed to it are never
    written (they time out and are retried, as Slack retries an unacked envelope)."""

    ws: web.WebSocketResponse
    transport: asyncio.BaseTransport | None
    ticket: str
    token: str = ""
    retiring: bool = False
    closed: bool = False
    deaf: bool = False
    id: str = field(default_factory=lambda: f"conn-{next(_conn_ids)}")
    sent: int = 0
    record: Json = field(default_factory=dict)


class ConnectionLog:
    """Every connection ever opened, with its live interval (see the module docstring)."""

    def __init__(self) -> None:
        self._seq = itertools.count(1)
        self.records: list[Json] = []

    def opened(self, conn: Conn, refused: str | None = None) -> None:
        """`conn` was sent `hello` (or, with `refused`, was turned away: never live)."""
        conn.record = {
            "id": conn.id, "token": conn.token, "opened_seq": next(self._seq),
            "opened_at": time.monotonic(), "closed_seq": None, "closed_at": None,
            "refused": refused, "disconnects": [], "deaf": False,
        }  # fmt: skip
        self.records.append(conn.record)

    def told(self, conn: Conn, reason: str) -> None:
        if conn.record:
            conn.record["disconnects"].append(reason)

    def deafened(self, conn: Conn) -> None:
        if conn.record:
            conn.record["deaf"] = True

    def closed(self, conn: Conn) -> None:
        """`conn` ended; the first call counts (a close frame, then the transport's end)."""
        if conn.record and conn.record["closed_seq"] is None:
            conn.record["closed_seq"] = next(self._seq)
            conn.record["closed_at"] = time.monotonic()

    def history(self, token: str | None = None) -> list[Json]:
        """Copies of the records, oldest first, of `token`'s connections (all when None)."""
        return [
            dict(r, disconnects=list(r["disconnects"]))
            for r in self.records
            if token is None or r["token"] == token
        ]

    def overlaps(self, token: str | None = None) -> list[tuple[str, str]]:
        """Pairs of connection ids of `token` that were live at the same time (an open one
        is live until now)."""
        live = [r for r in self.history(token) if r["refused"] is None]
        pairs: list[tuple[str, str]] = []
        for i, a in enumerate(live):
            for b in live[i + 1 :]:
                a_end = a["closed_seq"] if a["closed_seq"] is not None else float("inf")
                b_end = b["closed_seq"] if b["closed_seq"] is not None else float("inf")
                if a["opened_seq"] < b_end and b["opened_seq"] < a_end:
                    pairs.append((a["id"], b["id"]))
        return pairs
