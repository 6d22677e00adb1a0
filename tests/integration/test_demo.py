"""`agentbridge demo`: the Quickstart's first command, end to end with the real CLIs.

By default the demo runs the real Slack backend against the loopback emulator and serves its web
page; these tests drive it over that page's JSON endpoints (the browser itself is exercised in
tests/e2e/test_demo_browser.py) and through `agentbridge send`. `--console` keeps the old
stdout-only demo, checked here too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until

pytestmark = pytest.mark.integration

SLUGS = ("demo-claude", "demo-codex")
READY = {"demo-claude": "bypass permissions", "demo-codex": "gpt-5"}
URL_LINE = re.compile(r"open (http://127\.0\.0\.1:\d+/) in a browser")


@dataclass
class Demo:
    """A running `agentbridge demo` subprocess with its own state dir and tmux socket."""

    proc: subprocess.Popen[bytes]
    out: Path
    state: Path
    socket: str
    env: dict[str, str]

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def pane(self, slug: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, "capture-pane", "-p", "-t", f"={slug}:"],
            capture_output=True,
            text=True,
        ).stdout.lower()

    def wait_ready(self) -> None:
        wait_until(partial(self.printed, "agentbridge demo is running"), 120, "demo banner")
        for slug in SLUGS:
            wait_until(partial(self.ready, slug), 90, f"{slug} ready")

    def ready(self, slug: str) -> bool:
        return READY[slug] in self.pane(slug)

    def url_line(self) -> re.Match[str] | None:
        return URL_LINE.search(self.output())

    def printed(self, text: str) -> bool:
        return text in self.output()

    def url(self) -> str:
        found = wait_until(self.url_line, 120, "the page's URL")
        return str(found.group(1))

    def send(self, slug: str, text: str) -> None:
        sent = subprocess.run(
            [sys.executable, "-m", "bridge", "send", slug, text],
            env=dict(self.env, AGENTBRIDGE_HOME=str(self.state)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stderr

    def interrupt_and_check_clean(self) -> None:
        """Ctrl-C: exit 0 and no tmux session left on the demo's socket."""
        self.proc.send_signal(signal.SIGINT)
        assert self.proc.wait(timeout=60) == 0, self.output()[-3000:]
        left = subprocess.run(
            ["tmux", "-L", self.socket, "list-sessions"], capture_output=True, text=True
        )
        assert left.stdout.strip() == ""


@contextlib.contextmanager
def demo_runner(tmp_path: Path) -> Iterator[Callable[..., Demo]]:
    """Start `agentbridge demo ARGS…`; stops it (hard) and its tmux server afterwards."""
    demos: list[Demo] = []

    def start(*args: str) -> Demo:
        socket = f"ab-demo-{uuid.uuid4().hex[:8]}"
        env = dict(os.environ, AGENTBRIDGE_TMUX_SOCKET=socket)
        state, out = tmp_path / "demo-state", tmp_path / "demo.out"
        with out.open("wb") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bridge", "demo", "--state-dir", str(state), *args],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=tmp_path,
            )
        demos.append(Demo(proc, out, state, socket, env))
        return demos[-1]

    try:
        yield start
    finally:
        for demo in demos:
            if demo.proc.poll() is None:
                demo.proc.kill()
                demo.proc.wait()
            subprocess.run(["tmux", "-L", demo.socket, "kill-server"], capture_output=True)
            sys.stderr.write(f"--- demo output ---\n{demo.output()[-4000:]}\n")


@pytest.fixture
def run_demo(tmp_path: Path, cli_bins: object) -> Iterator[Callable[..., Demo]]:
    with demo_runner(tmp_path) as start:
        yield start


def page_state(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}web/state", timeout=10) as resp:
        data: dict[str, Any] = json.load(resp)
    return data


def page_post(url: str, body: dict[str, str]) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{url}web/post",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        data: dict[str, Any] = json.load(resp)
    return data


def channel(url: str, name: str) -> dict[str, Any]:
    return next(c for c in page_state(url)["channels"] if c["name"] == name)


def bot_said(url: str, name: str, needle: str, thread_of: str | None = None) -> bool:
    """Whether the app posted `needle` in #name: top-level, or in the thread of `thread_of`."""
    messages = channel(url, name)["messages"]
    if thread_of is not None:
        top = next((m for m in messages if m["ts"] == thread_of), None)
        messages = top["replies"] if top is not None else []
    return any(m["is_bot"] and needle in m["text"] for m in messages)


def test_demo_slack_page_and_send_reach_the_agents_and_ctrl_c_stops_all(
    run_demo: Callable[..., Demo],
) -> None:
    demo = run_demo("--port", "0")
    url = demo.url()
    demo.wait_ready()
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert "<title>agentbridge demo" in resp.read().decode()
    state = page_state(url)
    you = next(u["id"] for u in state["users"] if u["display_name"] == "You")
    assert {c["name"] for c in state["channels"]} == set(SLUGS)
    for slug in SLUGS:
        # As the page's Post button does: the answer lands in the message's thread.
        text = f"hello {slug} from the page"
        posted = page_post(url, {"user": you, "channel": slug, "text": text})
        assert posted["ok"], posted
        in_thread = partial(bot_said, url, slug, f"ack: {text}", posted["ts"])
        wait_until(in_thread, 90, f"{slug}'s answer in the thread on the page")
        # Through the CLI: mirrored top-level, since no Slack message caused it.
        demo.send(slug, f"hello {slug} from the cli")
        top_level = partial(bot_said, url, slug, f"ack: hello {slug} from the cli")
        wait_until(top_level, 90, f"{slug}'s answer to `agentbridge send` on the page")
    # Only the demo's human is allowed to steer, and the config says so.
    assert you in (demo.state / "agents.yaml").read_text()
    demo.interrupt_and_check_clean()


def test_demo_console_answers_send_and_stops_on_ctrl_c(run_demo: Callable[..., Demo]) -> None:
    demo = run_demo("--console")
    demo.wait_ready()
    assert not URL_LINE.search(demo.output())
    for slug in SLUGS:
        demo.send(slug, f"hello {slug}")
        line = f"[{slug}] ack: hello {slug}"
        wait_until(partial(demo.printed, line), 90, f"{slug}'s answer on the demo console")
    demo.interrupt_and_check_clean()
