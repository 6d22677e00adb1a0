"""The doctor after a clean stop (hooks that fired with no runner listening are not failures)
and against the demo (its Slack emulator is named, not "not configured"); the hook client
that tells the two kinds of hook failure apart; tmux's "no current target"."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.app import runner_files
from bridge.doctor import hooks as doctor_hooks
from bridge.doctor.slack import check_slack, is_loopback
from bridge.fleet.tmux import TmuxServer
from bridge.hooks import client


def hook_env(state: Path, slug: str = "web") -> dict[str, str]:
    return {
        "AGENTBRIDGE_HOOK_SOCKET": str(state / "hooks.sock"),
        "AGENTBRIDGE_SLUG": slug,
        "AGENTBRIDGE_HOOK_TOKEN": "t",
        "KANBAN_SESSION_ID": "id",
    }


def log_entries(state: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (state / "hooks.log").read_text().splitlines()]


def test_hook_with_no_runner_listening_is_logged_as_runner_down(tmp_path: Path) -> None:
    # No socket at all (the runner is gone), then a stale socket file nobody listens on.
    assert client.main("SessionEnd", io.StringIO("{}"), hook_env(tmp_path)) == 0
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "hooks.sock"))
    stale.close()
    assert client.main("SessionEnd", io.StringIO("{}"), hook_env(tmp_path)) == 0
    entries = log_entries(tmp_path)
    assert [e.get("runner_down") for e in entries] == [True, True]
    assert entries[0]["error"] == "runner not running (FileNotFoundError)"
    assert entries[1]["error"] == "runner not running (ConnectionRefusedError)"


def test_a_hook_the_runner_answered_badly_is_a_failure(tmp_path: Path) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "hooks.sock"))
    server.listen(1)
    try:

        def answer() -> None:
            conn, _ = server.accept()
            conn.recv(65536)
            conn.sendall(b'{"ok": false, "error": "unknown token"}\n')
            conn.close()

        thread = threading.Thread(target=answer)
        thread.start()
        client.main("Stop", io.StringIO("{}"), hook_env(tmp_path))
        thread.join(10)
    finally:
        server.close()
    (entry,) = log_entries(tmp_path)
    assert "runner_down" not in entry and entry["error"] == "rejected: unknown token"


def write_log(state: Path, entries: list[dict[str, object]]) -> None:
    (state / "hooks.log").write_text("".join(json.dumps(e) + "\n" for e in entries))


def test_hooks_after_a_clean_stop_are_not_failures(tmp_path: Path) -> None:
    now = time.time()
    write_log(
        tmp_path,
        [
            {
                "ts": now - 30,
                "slug": "cl",
                "event": "SessionEnd",
                "error": "x",
                "runner_down": True,
            },
            {
                "ts": now - 20,
                "slug": "cx",
                "event": "SessionEnd",
                "error": "x",
                "runner_down": True,
            },
        ],
    )
    checks = doctor_hooks.check_hooks_log(tmp_path, now=now)
    assert all(c.ok for c in checks), checks
    assert any("2 hooks fired while no runner was listening" in c.detail for c in checks)


def test_a_live_runner_refusing_hooks_is_a_failure(tmp_path: Path) -> None:
    handle = runner_files.acquire_runner_lock(tmp_path)  # a runner up since now
    try:
        started = (tmp_path / "runner.lock").stat().st_mtime
        write_log(
            tmp_path,
            [
                {"ts": started - 60, "slug": "cl", "event": "SessionEnd", "runner_down": True},
                {"ts": started + 1, "slug": "cl", "event": "Stop", "runner_down": True},
                {"ts": started + 2, "slug": "cx", "event": "Stop", "error": "timed out"},
            ],
        )
        checks = doctor_hooks.check_hooks_log(tmp_path, now=started + 10)
    finally:
        handle.close()
    assert sorted((c.agent, c.ok) for c in checks if not c.ok) == [("cl", False), ("cx", False)]
    cl = next(c for c in checks if c.agent == "cl")
    assert cl.detail.startswith("1 hook failure in the last 24 h")


def test_slack_emulator_named_from_the_runner_json(tmp_path: Path) -> None:
    url = "http://127.0.0.1:8765/api/"
    (tmp_path / "runner.json").write_text(json.dumps({"pid": 42, "slack_api_url": url}))
    (check,) = check_slack(None, {}, tmp_path)
    assert check.ok and "not configured" not in check.detail
    assert check.detail.startswith(f"the runner (pid 42) uses the Slack emulator at {url}")
    (tmp_path / "runner.json").write_text(json.dumps({"pid": 42, "slack_api_url": None}))
    assert check_slack(None, {}, tmp_path)[0].detail == "Slack: not configured (console backend)"


def test_runner_json_records_the_slack_api_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:1/api/")
    runner_files.write_runner_info(tmp_path, tmp_path / "agents.yaml", None)
    info = json.loads((tmp_path / "runner.json").read_text())
    assert info["slack_api_url"] == "http://127.0.0.1:1/api/" and info["pid"] == os.getpid()


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8765/api/", True),
        ("http://localhost:1/api/", True),
        ("http://[::1]:1/api/", True),
        ("https://slack.com/api/", False),
        (None, False),
    ],
)
def test_is_loopback(url: str | None, loopback: bool) -> None:
    assert is_loopback(url) is loopback


# -- tmux ------------------------------------------------------------------------------------------


@pytest.fixture
def empty_tmux_server() -> Iterator[str]:
    """A real tmux server that outlives its last session, as right after a kill-session."""
    name = f"ab-test-{uuid.uuid4().hex[:10]}"
    tmux = ["tmux", "-L", name, "-f", "/dev/null"]
    subprocess.run([*tmux, "new-session", "-d", "-s", "x", ";", "set", "-g", "exit-empty", "off"])
    subprocess.run([*tmux, "kill-session", "-t", "=x"], check=True)
    yield name
    subprocess.run([*tmux, "kill-server"], capture_output=True, check=False)
    socket_file = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}" / name
    socket_file.unlink(missing_ok=True)


def test_no_current_target_means_no_sessions(empty_tmux_server: str) -> None:
    probe = subprocess.run(
        ["tmux", "-L", empty_tmux_server, "list-panes", "-a"], capture_output=True, text=True
    )
    assert "no current target" in probe.stderr  # what tmux says here
    assert TmuxServer(empty_tmux_server).snapshot() == {}
    assert not TmuxServer(empty_tmux_server).has_session("x")
