"""A loopback TCP relay whose link can be cut and restored: one host's network partition.

Tests put it between one runner and the shared Postgres (the runner's database URL names the
relay's port): :meth:`Relay.cut` closes every open connection and refuses new ones at once, as
a host that lost its route to the database sees it; :meth:`Relay.restore` lets connections
through again. The other runners, connected straight to the database, are not affected.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class Relay:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        threading.Thread(target=self._accept, name="tcpcut", daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            conns, self._open = self._open, set()
        for conn in conns:
            _close(conn)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._server)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                refused = self._cut
            if refused:
                _close(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            with self._lock:
                self._open |= {client, server}
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for conn in (src, dst):
                _close(conn)
            with self._lock:
                self._open -= {src, dst}


def _close(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        conn.close()
