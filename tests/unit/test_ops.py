"""The operator side (issue 25, item 3): systemd's notify protocol on a real unix datagram
socket, the watchdog fed only by a live loop whose core tasks all run, and the metrics
collector's output (rendered by prometheus_client itself)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import ValidationError

from bridge.config.ops import Metrics
from bridge.ops.metrics import AgentNow, FleetCollector, LoopFigures, StoredAgent
from bridge.ops.systemd import Notifier, watchdog


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(30)
    yield sock
    sock.close()


def env_for(sock: socket.socket, usec: int = 100_000, pid: int | None = None) -> dict[str, str]:
    env = {"NOTIFY_SOCKET": sock.getsockname(), "WATCHDOG_USEC": str(usec)}
    if pid is not None:
        env["WATCHDOG_PID"] = str(pid)
    return env


def drain(sock: socket.socket) -> list[str]:
    got: list[str] = []
    sock.setblocking(False)
    try:
        while True:
            got.append(sock.recv(4096).decode())
    except BlockingIOError:
        return got
    finally:
        sock.settimeout(30)


def test_notifier_speaks_sd_notify_and_is_silent_outside_systemd(
    notify_socket: socket.socket,
) -> None:
    Notifier(env_for(notify_socket)).send("READY=1")
    assert notify_socket.recv(4096) == b"READY=1"
    Notifier({}).send("READY=1")  # no NOTIFY_SOCKET: nothing sent, nothing raised
    assert drain(notify_socket) == []
    assert Notifier(env_for(notify_socket)).interval == pytest.approx(0.05)
    assert Notifier(env_for(notify_socket, pid=os.getpid() + 1)).interval is None, "not ours"
    assert Notifier({"NOTIFY_SOCKET": "/x"}).interval is None, "no WatchdogSec"


def test_abstract_notify_socket() -> None:
    name = f"agentbridge-test-{os.getpid()}-{threading.get_ident()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(30)
        Notifier({"NOTIFY_SOCKET": "@" + name}).send("STOPPING=1")
        assert sock.recv(4096) == b"STOPPING=1"


def test_a_blocked_loop_stops_feeding_the_watchdog_and_a_released_one_feeds_it_again(
    notify_socket: socket.socket,
) -> None:
    blocked, release = threading.Event(), threading.Event()
    notifier = Notifier(env_for(notify_socket))  # a ping every 0.05 s

    def block_the_loop() -> None:  # on the loop, on purpose: a deadlock's stand-in
        blocked.set()
        assert release.wait(60)

    async def scenario() -> None:
        stop = asyncio.Event()
        dog = asyncio.create_task(watchdog(notifier, lambda: True, stop))
        await asyncio.to_thread(notify_socket.recv, 4096)  # fed while the loop runs
        block_the_loop()
        await asyncio.to_thread(notify_socket.recv, 4096)  # fed again once released
        stop.set()
        await dog

    def judge() -> None:
        assert blocked.wait(60)
        drain(notify_socket)  # pings sent before the block
        notify_socket.settimeout(notifier.interval * 10)  # type: ignore[operator]
        with pytest.raises(TimeoutError):
            notify_socket.recv(4096)  # ten intervals: not one ping while the loop is blocked
        notify_socket.settimeout(30)
        release.set()

    judging = threading.Thread(target=judge)
    judging.start()
    asyncio.run(scenario())
    judging.join()


def test_a_dead_core_task_stops_the_pings(notify_socket: socket.socket) -> None:
    notifier = Notifier(env_for(notify_socket))

    async def scenario() -> None:
        stop = asyncio.Event()
        core = asyncio.create_task(asyncio.sleep(3600))
        dog = asyncio.create_task(watchdog(notifier, lambda: not core.done(), stop))
        await asyncio.to_thread(notify_socket.recv, 4096)
        core.cancel()
        await asyncio.gather(core, return_exceptions=True)
        await asyncio.sleep(0)  # the watchdog's current wait may still end in one ping
        await asyncio.to_thread(drain, notify_socket)
        notify_socket.settimeout(notifier.interval * 10)  # type: ignore[operator]
        with pytest.raises(TimeoutError):
            await asyncio.to_thread(notify_socket.recv, 4096)
        stop.set()
        await dog

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "listen,address",
    [(9464, ("127.0.0.1", 9464)), ("9464", ("127.0.0.1", 9464)), ("0.0.0.0:80", ("0.0.0.0", 80))],
)
def test_metrics_listen_forms(listen: object, address: tuple[str, int]) -> None:
    assert Metrics.model_validate({"listen": listen}).address() == address
    assert Metrics().address() is None, "off by default"


@pytest.mark.parametrize("listen", ["", "host", "h:0", "h:70000", "h:x"])
def test_a_bad_listen_names_the_key(listen: str) -> None:
    with pytest.raises(ValidationError, match="listen"):
        Metrics.model_validate({"listen": listen})


def render(collector: FleetCollector) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode()


def test_the_collector_renders_loop_and_store_figures(tmp_path: Path) -> None:
    transcript = tmp_path / "t.jsonl"
    transcript.write_text("{}\n")
    stored = [StoredAgent("a1", True, 3, 17, 1, 2, 1_900_000_000.0)]
    collector = FleetCollector(lambda: stored, lambda: None)
    collector.now = LoopFigures(
        states=("idle", "working"),
        agents=(AgentNow("a1", "working", 0.0, True, 4, str(transcript)),),
        loop_lag_s=0.25,
        rate_limited={"chat.postMessage": 5},
        chat_connected=True,
    )
    text = render(collector)
    for line in (
        'agentbridge_agent_activity{activity="working",agent="a1"} 1.0',
        'agentbridge_agent_activity{activity="idle",agent="a1"} 0.0',
        'agentbridge_agent_queue_depth{agent="a1"} 3.0',
        'agentbridge_agent_posts_total{agent="a1"} 17.0',
        'agentbridge_agent_restarts_total{agent="a1"} 2.0',
        'agentbridge_agent_mirror_failures{agent="a1"} 4.0',
        'agentbridge_agent_limited{agent="a1"} 1.0',
        'agentbridge_slack_rate_limited_total{method="chat.postMessage"} 5.0',
        "agentbridge_chat_connected 1.0",
        "agentbridge_loop_lag_seconds 0.25",
        "agentbridge_store_up 1.0",
    ):
        assert line in text, line
    assert 'agentbridge_agent_transcript_age_seconds{agent="a1"}' in text
    assert 'agentbridge_agent_turn_age_seconds{agent="a1"}' in text


def test_a_store_away_is_a_figure_not_a_failed_scrape() -> None:
    def away() -> None:
        raise OSError("connection refused")

    text = render(FleetCollector(list, away))
    assert "agentbridge_store_up 0.0" in text
    assert "agentbridge_loop_lag_seconds" in text


def test_a_full_notify_queue_drops_pings_instead_of_blocking(notify_socket: socket.socket) -> None:
    """systemd not reading (busy, or stopping) must not block the runner's loop: a unix
    datagram queue holds only a few messages, and a blocking send then waits for ever."""
    notifier = Notifier(env_for(notify_socket))
    for _ in range(1000):  # far beyond the queue's length; nobody reads meanwhile
        notifier.send("WATCHDOG=1")
    assert 0 < len(drain(notify_socket)) < 1000
