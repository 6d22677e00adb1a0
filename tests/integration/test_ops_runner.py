"""The real runner under a stand-in systemd (a unix datagram socket in ``NOTIFY_SOCKET``, as
``Type=notify`` with ``WatchdogSec=`` gives it) and with its metrics endpoint on: ``READY=1`` once
started, ``WATCHDOG=1`` while it runs, ``STOPPING=1`` on SIGTERM; and ``/metrics``, read over
HTTP during a real turn of a real CLI, shows the agent's activity and its counters changing."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Fleet, wait_until
from tests.integration.test_runner import wait_ready

pytestmark = pytest.mark.integration


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(0.2)
    yield sock
    sock.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Heard(threading.Thread):
    """Reads the notify socket all along, as systemd does (its queue is short: a reader that
    lags makes the runner drop pings, by design, rather than block its loop)."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.messages: list[str] = []
        self.done = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.done.is_set():
            with contextlib.suppress(TimeoutError):
                self.messages.append(self.sock.recv(4096).decode())

    def count(self, message: str) -> int:
        return list(self.messages).count(message)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        return str(answer.read().decode())


def figure(text: str, name: str, **labels: str) -> float | None:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    match = re.search(rf"^{name}{{{re.escape(want)}}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


def test_the_runner_tells_systemd_and_serves_metrics_that_move(
    fleet: Fleet, notify: socket.socket
) -> None:
    port = free_port()
    fleet.slack_env.update(
        {"NOTIFY_SOCKET": notify.getsockname(), "WATCHDOG_USEC": "400000"}  # a ping per 0.2 s
    )
    fleet.agent("om", "claude")
    fleet.write_config(metrics={"listen": f"127.0.0.1:{port}"})
    fleet.start_runner()
    heard = Heard(notify)
    wait_until(lambda: heard.count("READY=1") == 1, 90, "READY=1")
    wait_until(lambda: heard.count("WATCHDOG=1") >= 3, 60, "the watchdog fed")
    wait_ready(fleet, "om", "claude")

    def idle() -> bool:
        text = scrape(port)
        return figure(text, "agentbridge_agent_activity", agent="om", activity="idle") == 1.0

    wait_until(idle, 90, "om idle in /metrics")
    before = figure(scrape(port), "agentbridge_agent_posts_total", agent="om") or 0.0
    assert "agentbridge_store_up 1.0" in scrape(port)
    out = fleet.cli(
        "send", "om", "RUN: sleep 8; echo metrics-$((6*7))", "--config", str(fleet.config_path)
    )
    assert "sent" in out.stdout

    def working() -> bool:  # the tool call runs for seconds: the turn shows, and ages
        text = scrape(port)
        return (
            figure(text, "agentbridge_agent_activity", agent="om", activity="working") == 1.0
            and (figure(text, "agentbridge_agent_turn_age_seconds", agent="om") or 0) > 0
        )

    wait_until(working, 60, "om working in /metrics")
    wait_until(idle, 90, "om idle again in /metrics")
    wait_until(
        lambda: (figure(scrape(port), "agentbridge_agent_posts_total", agent="om") or 0) > before,
        90,
        "the posts counter moved",
    )
    seen = fleet.log_text()
    assert "metrics: serving" in seen
    fleet.stop_runner()
    wait_until(lambda: heard.count("STOPPING=1") == 1, 30, "STOPPING=1")
    heard.done.set()
    with pytest.raises(OSError):
        scrape(port)  # the endpoint went with the runner
