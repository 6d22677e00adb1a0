"""systemd's notify protocol: ``READY=1`` once the runner has started, ``WATCHDOG=1`` while it
is healthy, ``STOPPING=1`` when it stops (``Type=notify`` with ``WatchdogSec=``, see
``deploy/agentbridge.service`` and sd_notify(3)).

Why a watchdog: a runner whose process lives but whose event loop is blocked (a deadlock, a
blocking call that never returns) posts nothing, pastes nothing and answers no hook, yet
``Restart=on-failure`` never fires because nothing exited. The pings are sent *by a task on the
loop*, and only while every core task is alive, so a blocked loop or a dead core task stops them
and systemd restarts the runner (the agents keep running in tmux and are adopted).

The protocol is one datagram per message to the unix socket named by ``NOTIFY_SOCKET`` (a
leading ``@`` is Linux's abstract namespace); without that variable (not under systemd) every
call here does nothing. ``WATCHDOG_USEC`` sets the ping interval (half of it, as sd_notify(3)
advises), and ``WATCHDOG_PID``, when set, must be this process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

from bridge.aio import wait_event

log = logging.getLogger("agentbridge.systemd")


class Notifier:
    """Sends sd_notify messages; a no-op outside systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + path[1:] if path.startswith("@") else path
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        ours = not pid or pid == str(os.getpid())
        self.interval = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 and ours else None
        """Seconds between two watchdog pings; None when systemd asked for none."""

    def send(self, message: str) -> None:
        if not self.address:
            return
        try:  # never blocks the loop: a full queue (systemd not reading) drops this ping
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)
                sock.sendto(message.encode(), self.address)
        except OSError as err:  # systemd gone (a stop in progress) or busy: nothing to tell
            log.debug("systemd: could not send %s: %s", message.split("=")[0], err)


async def watchdog(notifier: Notifier, healthy: Callable[[], bool], stop: asyncio.Event) -> None:
    """Until ``stop``: ``WATCHDOG=1`` every interval while ``healthy()`` (all core tasks
    alive). Runs on the runner's loop: a blocked loop sends nothing, which is the point."""
    if notifier.interval is None:
        return
    told = False
    while not stop.is_set():
        if healthy():
            notifier.send("WATCHDOG=1")
            told = False
        elif not told:
            told = True
            log.error("runner: a core task is down; the systemd watchdog is no longer fed")
        await wait_event(stop, notifier.interval)
