"""Shared fixtures: isolation for every test, real CLIs, fake model servers, fleets.

Every test that touches tmux or a CLI gets its own tmux socket, state dir, CLAUDE_CONFIG_DIR,
CODEX_HOME and free ports; nothing here reads or writes ~/.claude, ~/.codex or the default tmux
server. Waits are condition polls with generous timeouts, never fixed sleeps.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from runtimes import get_runtime

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"  # copies of ../shared/fixtures (real CLI output)


def wait_until(
    predicate: Callable[[], Any],
    timeout: float = 60.0,
    what: str = "condition",
    interval: float = 0.1,
) -> Any:
    """Poll ``predicate`` until truthy; raise with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may fall back to the user's real CLI homes or default tmux server."""
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "no-claude-home"))
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "no-codex-home"))
    monkeypatch.setenv("AGENTBRIDGE_HOME", str(tmp_path / "no-agentbridge-home"))
    monkeypatch.setenv("AGENTBRIDGE_TMUX_SOCKET", f"ab-unused-{uuid.uuid4().hex[:8]}")
    for var in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_API_URL",
        "TMUX",
        "TMUX_PANE",
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def cli_bins() -> dict[str, Path]:
    """The pinned real CLIs, installed into the shared npm cache dir once per machine."""
    from bridge.devtools import clis

    return {name: clis.ensure(name) for name in clis.PINS}


@pytest.fixture
def tmux_socket() -> Iterator[str]:
    name = f"ab-test-{uuid.uuid4().hex[:10]}"
    yield name
    subprocess.run(["tmux", "-L", name, "kill-server"], capture_output=True, check=False)


@pytest.fixture
def fake_models(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    from bridge.devtools.fake_anthropic import FakeAnthropic
    from bridge.devtools.fake_openai import FakeOpenAI

    with (
        FakeAnthropic(log_path=tmp_path / "anthropic.jsonl") as anthropic,
        FakeOpenAI(log_path=tmp_path / "openai.jsonl") as openai,
    ):
        yield anthropic, openai


class Fleet:
    """A throwaway fleet: config file, state dir, per-agent CLI homes, a runner process."""

    def __init__(self, root: Path, socket: str, bins: dict[str, Path], models: tuple[Any, Any]):
        self.root = root
        self.socket = socket
        self.bins = bins
        self.anthropic, self.openai = models
        self.state_dir = root / "state"
        self.config_path = root / "agents.yaml"
        self.agents: list[dict[str, Any]] = []
        self.runner: subprocess.Popen[bytes] | None = None
        self.runner_log = root / "runner.log"
        self.slack_env: dict[str, str] = {}

    def use_slack(self, emulator: Any) -> None:
        """Run the runner against the loopback Slack emulator (SlackBackend, not the console)."""
        self.slack_env = {
            "SLACK_BOT_TOKEN": emulator.bot_token,
            "SLACK_APP_TOKEN": emulator.app_token,
            "SLACK_API_URL": emulator.api_url,
        }

    # -- config --------------------------------------------------------------------------

    def agent(
        self, slug: str, runtime: str = "claude", version: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        workdir = self.root / "work" / slug
        workdir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", str(workdir)], check=True)
        home = self.root / "homes" / slug
        runtime_impl = get_runtime(runtime)
        urls = {"anthropic": self.anthropic.url, "openai": self.openai.url}
        env, args = runtime_impl.offline(home, urls[runtime_impl.model_api])
        bin_ = self.bins[version or runtime]
        spec: dict[str, Any] = {
            "slug": slug,
            "runtime": runtime,
            "workdir": str(workdir),
            "bin": str(bin_),
            "env": env,
            "args": args,
        }
        spec.update(extra)
        self.agents.append(spec)
        return spec

    def agents_by_slug(self, slug: str) -> dict[str, Any]:
        return next(a for a in self.agents if a["slug"] == slug)

    def write_config(self, **top: Any) -> None:
        data = {"launch_stagger_seconds": 0.2, "agents": self.agents, **top}
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(data, sort_keys=False))
        tmp.replace(self.config_path)

    # -- processes -----------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["AGENTBRIDGE_HOME"] = str(self.state_dir)
        env["AGENTBRIDGE_TMUX_SOCKET"] = self.socket
        env.update(self.slack_env)
        return env

    def cli(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bridge", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            cwd=self.root,
        )

    def start_runner(self, *extra: str) -> None:
        if not self.config_path.exists():
            self.write_config()
        log = self.runner_log.open("ab")
        self.runner = subprocess.Popen(
            [sys.executable, "-m", "bridge", "run", "--config", str(self.config_path), *extra],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
        )

    def stop_runner(self) -> int | None:
        if self.runner is None:
            return None
        self.runner.terminate()
        try:
            code = self.runner.wait(timeout=30)
        except subprocess.TimeoutExpired:  # hung: its threads' stacks to the log, then kill
            self.runner.send_signal(signal.SIGUSR1)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.runner.wait(timeout=2)
            self.runner.kill()
            code = self.runner.wait()
        self.runner = None
        return code

    def log_text(self) -> str:
        return self.runner_log.read_text(errors="replace") if self.runner_log.exists() else ""

    def tmux(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False
        )
        return out.stdout

    def capture(self, slug: str) -> str:
        return self.tmux("capture-pane", "-p", "-t", f"={slug}:")

    def sessions(self) -> set[str]:
        return {s for s in self.tmux("list-sessions", "-F", "#{session_name}").split() if s}

    def wait_relaunched(
        self, slug: str, *old_pids: int, timeout: float = 60, what: str = "relaunch"
    ) -> dict[str, Any]:
        """Wait until ``slug`` runs again under a pid that is none of ``old_pids``."""
        return wait_until(
            lambda: (s := self.status()[slug])["alive"] and s["pid"] not in old_pids and s,
            timeout,
            what,
        )

    def status(self) -> dict[str, dict[str, Any]]:
        import json

        out = self.cli("status", "--json", "--config", str(self.config_path))
        return {row["slug"]: row for row in json.loads(out.stdout)}


@pytest.fixture
def slack() -> Iterator[Any]:
    from bridge.devtools.slack_emulator import SlackEmulator

    with SlackEmulator() as emulator:
        yield emulator


@pytest.fixture
def fleet(
    tmp_path: Path, tmux_socket: str, cli_bins: dict[str, Path], fake_models: tuple[Any, Any]
) -> Iterator[Fleet]:
    f = Fleet(tmp_path, tmux_socket, cli_bins, fake_models)
    yield f
    f.stop_runner()
    if f.runner_log.exists():
        sys.stderr.write(f"--- runner log ({f.runner_log}) ---\n{f.log_text()[-4000:]}\n")
