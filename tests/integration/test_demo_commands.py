"""A newcomer's first hour: every command `agentbridge demo` prints works as printed, from the
checkout, in another shell (no AGENTBRIDGE_TMUX_SOCKET, no --state-dir); `doctor` names the Slack
emulator while it runs; Ctrl-C leaves nothing stale and `doctor` afterwards has no FAIL."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from bridge.app.demo import tmux_socket_file
from bridge.app.runner_files import DEMO_POINTER
from tests.conftest import wait_until
from tests.integration.test_demo import SLUGS, Demo, bot_said, demo_runner

pytestmark = pytest.mark.integration


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default state dir for the demo and for the commands typed in another shell."""
    path = tmp_path / "home"
    monkeypatch.setenv("AGENTBRIDGE_HOME", str(path))
    return path


@pytest.fixture
def run_demo(tmp_path: Path, home: Path, cli_bins: object) -> Iterator[Callable[..., Demo]]:
    with demo_runner(tmp_path) as start:
        yield start


def printed(demo: Demo, label: str) -> list[str]:
    """The commands printed after `label:` in the banner, in order."""
    return [m.group(1) for m in re.finditer(rf"^\s+{label}:\s+(.+?)\s*$", demo.output(), re.M)]


def another_shell(
    command: str, cwd: Path, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run a printed command as a person would paste it: a shell in the demo's cwd, with the
    environment of a fresh terminal (no demo socket, no Slack settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AGENTBRIDGE_TMUX"))}
    env["COLUMNS"] = "80"
    return subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )


def test_printed_commands_work_as_printed_and_ctrl_c_leaves_nothing_stale(
    run_demo: Callable[..., Demo], tmp_path: Path, home: Path
) -> None:
    demo = run_demo("--port", "0")
    url = demo.url()
    demo.wait_ready()
    status_cmd = printed(demo, "status")[0]
    assert "AGENTBRIDGE_HOME" not in status_cmd and "--state-dir" not in status_cmd

    shown = another_shell(status_cmd, tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("runner: pid "), shown.stdout
    table = lines[1:]  # the runner line names paths; the table fits 80 columns
    assert "…" not in shown.stdout and all(len(x) <= 80 for x in table), shown.stdout
    for slug in SLUGS:
        assert any(x.startswith(slug) for x in lines), shown.stdout

    for slug, steer in zip(SLUGS, printed(demo, "steer"), strict=True):
        assert f"send {slug} " in steer
        sent = another_shell(steer, tmp_path)
        assert sent.returncode == 0, sent.stderr
        wait_until(partial(bot_said, url, slug, "ran: ls -la"), 120, f"{slug} ran the command")

    # attach, as printed, inside a terminal of its own: it shows the demo agent's screen.
    outer = f"ab-outer-{uuid.uuid4().hex[:8]}"
    attach = printed(demo, "watch")[0].split("   (")[0]
    assert attach.endswith(f"attach {SLUGS[0]}")
    env_prefix = "env -u AGENTBRIDGE_TMUX_SOCKET -u TMUX"
    try:
        subprocess.run(
            [
                "tmux",
                "-L",
                outer,
                "new-session",
                "-d",
                "-x",
                "200",
                "-y",
                "50",
                "-c",
                str(tmp_path),
                f"{env_prefix} {attach}",
            ],
            check=True,
        )

        def outer_screen() -> str:
            return subprocess.run(
                ["tmux", "-L", outer, "capture-pane", "-p", "-t", "0"],
                capture_output=True,
                text=True,
            ).stdout.lower()

        wait_until(lambda: "ran: ls -la" in outer_screen(), 60, "the attached agent's screen")
    finally:
        subprocess.run(["tmux", "-L", outer, "kill-server"], capture_output=True)
        tmux_socket_file(outer).unlink(missing_ok=True)

    doctor = another_shell(printed(demo, "doctor")[0] + " --json", tmp_path)
    checks = json.loads(doctor.stdout)
    slack = [c for c in checks if c["name"] == "slack"]
    assert "Slack emulator" in slack[0]["detail"], slack
    assert not any("not configured" in c["detail"] for c in checks)
    assert {c["agent"] for c in checks if c["name"] == "cli version"} == set(SLUGS)
    # who may steer is judged by the runner's backend (the emulator), not by this shell's
    # environment, which has no Slack tokens (issue 20.19)
    steer = {c["agent"]: c["detail"] for c in checks if c["name"] == "access"}
    assert steer == {slug: "allowlist: 1 Slack user may steer it" for slug in SLUGS}, steer
    listed = json.loads(another_shell(status_cmd + " --json", tmp_path).stdout)
    assert {s["slug"]: s["access"] for s in listed} == dict.fromkeys(SLUGS, "allowlist")

    state = Path(re.search(r"^\s+state:\s+(\S+)", demo.output(), re.M).group(1))  # type: ignore[union-attr]
    assert (home / DEMO_POINTER).exists() and (state / "runner.json").exists()
    demo.interrupt_and_check_clean()
    assert not (home / DEMO_POINTER).exists()
    assert not (state / "runner.json").exists()
    assert not tmux_socket_file(demo.socket).exists()

    after = re.search(r"Check it with: (.+)$", demo.output(), re.M)
    assert after is not None, demo.output()[-2000:]
    report = another_shell(after.group(1) + " --json", tmp_path)
    checks = json.loads(report.stdout)
    assert [c for c in checks if not c["ok"]] == [], report.stdout
    assert report.returncode == 0
    hooks = " ".join(c["detail"] for c in checks if c["name"] == "hooks")
    assert not re.search(r"\d+ hook failures? in the last", hooks), hooks
