"""``agentbridge demo``: the whole system on one machine with no keys and no network.

It starts the scripted fake model servers on loopback, installs the pinned real CLIs when
missing, writes a two-agent fleet (one Claude Code, one Codex) whose work dirs and CLI homes
live under the demo's state dir, and runs the real daemon on it with its own tmux socket.

By default the chat side is the loopback Slack emulator with its web page: the runner uses the
real ``SlackBackend`` (Socket Mode, Web API) against it, one channel per agent, and a person
posts as the human user "You" from a browser, so the demo shows exactly what a team sees in
Slack. ``--console`` keeps the older, browser-less demo (mirrored messages on stdout).

Ctrl-C stops everything it started: the runner and the agents, the demo's tmux sessions, the
emulator, the fake model servers, and removes what would otherwise be left stale: the tmux
socket file (tmux 3.3 leaves it after ``kill-server``), ``runner.json`` and the pointer below.

Its state lives in ``<state dir>/demo`` (``~/.agentbridge/demo`` by default). While it runs, a
pointer in the default state dir (``demo.json``, :mod:`bridge.app.runner_files`) lets a plain
``agentbridge status`` / ``send`` / ``attach`` / ``doctor`` in another shell find the demo,
and the banner prints those commands with the path of this very executable, since the
Quickstart's ``.venv/bin`` is not on PATH.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml

from bridge.app.daemon import Daemon, run_daemon
from bridge.app.logs import setup_logging
from bridge.app.runner_files import (
    clear_demo_pointer,
    remove_stale_runner_info,
    runner_alive,
    write_demo_pointer,
)
from bridge.config import paths
from bridge.devtools import clis
from bridge.devtools.fake_anthropic import FakeAnthropic
from bridge.devtools.fake_openai import FakeOpenAI
from bridge.devtools.slack_emulator import SlackEmulator
from bridge.hooks.command import hook_command
from runtimes import get_runtime

DEMO_SOCKET = "agentbridge-demo"
DEMO_PORT = 8765
"""The page's port when free and none was asked for: a stable URL to bookmark."""
AGENTS = (("demo-claude", "claude"), ("demo-codex", "codex"))
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")
"""slack_sdk ignores NO_PROXY: a proxy in the environment would swallow loopback calls."""


def demo_config(
    root: Path, anthropic_url: str, openai_url: str, allowed_users: list[str] | None = None
) -> dict[str, Any]:
    """A fleet of one Claude and one Codex agent wired to the fake model servers."""
    agents: list[dict[str, Any]] = []
    for slug, runtime in AGENTS:
        workdir = root / "work" / slug
        workdir.mkdir(parents=True, exist_ok=True)
        if not (workdir / ".git").exists():
            subprocess.run(["git", "init", "-q", str(workdir)], check=True)
        home = root / "homes" / slug
        agent: dict[str, Any] = {
            "slug": slug,
            "runtime": runtime,
            "workdir": str(workdir),
            "channel": f"#{slug}",
            "bin": str(clis.ensure(runtime)),
        }
        impl = get_runtime(runtime)
        urls = {"anthropic": anthropic_url, "openai": openai_url}
        agent["env"], agent["args"] = impl.offline(home, urls[impl.model_api])
        agents.append(agent)
    config: dict[str, Any] = {"launch_stagger_seconds": 1}
    if allowed_users:  # only the demo's human may steer, as a real deployment should say
        config["allowed_users"] = list(allowed_users)
    config["agents"] = agents
    return config


def own_command(cwd: Path | None = None) -> str:
    """How to run this very ``agentbridge`` as typed in a shell: relative to ``cwd`` when it
    is below it (``.venv/bin/agentbridge`` in the checkout), else its absolute path."""
    words = shlex.split(hook_command().removesuffix(" hook"))
    here = (cwd or Path.cwd()).absolute()
    exe = Path(words[0])
    if exe.is_relative_to(here):
        words[0] = str(exe.relative_to(here))
    return shlex.join(words)


def banner(
    root: Path,
    socket: str,
    slugs: list[str],
    web_url: str | None = None,
    command: str = "agentbridge",
    state_arg: str = "",
) -> str:
    """What to open and type; ``command`` and ``state_arg`` (``--state-dir X`` when a plain
    command would not find the demo) make every printed line work as printed."""
    run = f"{command}{state_arg}"
    lines = ["", "agentbridge demo is running (Ctrl-C stops it and everything it started).", ""]
    if web_url:
        lines += [
            f"  Slack (emulated): open {web_url} in a browser,",
            '  pick a channel and post as "You": the agent answers in the message\'s thread.',
            "",
        ]
    for slug in slugs:
        lines.append(f"  {slug}:" + (f"  channel #{slug}" if web_url else ""))
        lines.append(f"    watch:  {run} attach {slug}   (detach: Ctrl-b d; tmux -L {socket})")
        lines.append(f'    steer:  {run} send {slug} "RUN: ls -la"')
    lines += [
        "",
        f"  status: {run} status",
        f"  doctor: {run} doctor",
        f"  state:  {root} (work dirs, CLI homes, state.db, fake model request logs)",
        "",
    ]
    return "\n".join(lines)


def start_emulator(port: int | None) -> SlackEmulator:
    """The emulator with its page, on its own thread: `--port N` exactly (0: any free port),
    else `DEMO_PORT` when free, else any free port."""
    try:
        return SlackEmulator(port=DEMO_PORT if port is None else port, web_ui=True).start()
    except OSError:
        if port is not None:
            raise
        return SlackEmulator(web_ui=True).start()


def slack_workspace(emulator: SlackEmulator, slugs: list[str]) -> str:
    """The human "You" and one channel per agent with them in it; returns their user id."""
    you = emulator.add_user("you", "You")
    for slug in slugs:
        emulator.add_channel(slug, members=[you])
    return you


def stop_tmux(socket: str, slugs: list[str]) -> None:
    """Leave nothing behind: the demo's sessions (if the runner could not stop them), and the
    whole server when it is the demo's own."""
    tmux = ["tmux", "-L", socket]
    for slug in slugs:
        subprocess.run([*tmux, "kill-session", "-t", f"={slug}"], capture_output=True, check=False)
    if socket == DEMO_SOCKET:
        subprocess.run([*tmux, "kill-server"], capture_output=True, check=False)
    remove_stale_socket(socket)


def tmux_socket_file(socket: str) -> Path:
    """Where tmux puts a ``-L`` socket: ``$TMUX_TMPDIR`` (else /tmp) ``/tmux-UID/NAME``."""
    return Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}" / socket


def remove_stale_socket(socket: str) -> bool:
    """Unlink the socket file when no server answers on it (tmux 3.3 leaves it behind)."""
    path = tmux_socket_file(socket)
    if not path.exists():
        return False
    probe = subprocess.run(
        ["tmux", "-L", socket, "list-sessions"], capture_output=True, text=True, check=False
    )
    if probe.returncode == 0 or "no server running" not in probe.stderr:
        return False  # a server is up (someone else's sessions), or tmux said something else
    path.unlink(missing_ok=True)
    return True


def run_demo(
    state_dir: Path | None = None,
    verbose: bool = False,
    console: bool = False,
    port: int | None = None,
) -> int:
    """Run the demo in the foreground until Ctrl-C; the exit code is the runner's.

    The emulator lives on its own thread (`SlackEmulator.start`), not on the runner's loop, so
    the page stays up and answers while the runner is busy, and it is stopped only after the
    runner has closed its Socket Mode connection and stopped the agents."""
    setup_logging(verbose)
    home = paths.state_dir()
    root = paths.state_dir(state_dir) if state_dir else home / "demo"
    root.mkdir(parents=True, exist_ok=True)
    if runner_alive(root):
        print(f"agentbridge demo: another runner is using {root}", file=sys.stderr)
        return 3
    remove_stale_runner_info(root)  # a killed demo's, so status never points at a dead pid
    socket = os.environ.get("AGENTBRIDGE_TMUX_SOCKET") or DEMO_SOCKET
    os.environ["AGENTBRIDGE_TMUX_SOCKET"] = socket
    for var in PROXY_VARS:
        os.environ.pop(var, None)
    slugs = [slug for slug, _ in AGENTS]
    print("agentbridge demo: preparing the CLIs (first run installs them with npm)...", flush=True)
    for name in ("claude", "codex"):
        clis.ensure(name)
    code = 130
    config_path = root / "agents.yaml"
    with ExitStack() as stack:
        anthropic = stack.enter_context(FakeAnthropic(log_path=root / "anthropic-requests.jsonl"))
        openai = stack.enter_context(FakeOpenAI(log_path=root / "openai-requests.jsonl"))
        print(f"fake Anthropic API at {anthropic.url}, fake OpenAI API at {openai.url}")
        web_url, allowed = None, None
        if not console:
            try:
                emulator = start_emulator(port)
            except OSError as err:
                print(f"agentbridge demo: cannot serve the page: {err}", file=sys.stderr)
                return 2
            stack.callback(emulator.stop)
            allowed = [slack_workspace(emulator, slugs)]
            web_url = emulator.web_url
            # The daemon takes its Slack settings from the environment and strips the
            # tokens from it before any agent starts.
            os.environ["SLACK_BOT_TOKEN"] = emulator.bot_token
            os.environ["SLACK_APP_TOKEN"] = emulator.app_token
            os.environ["SLACK_API_URL"] = emulator.api_url
            print(f"Slack emulator at {emulator.base_url} (web page and API)")
        else:
            for var in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_API_URL"):
                os.environ.pop(var, None)
        config = demo_config(root, anthropic.url, openai.url, allowed)
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        # Plain commands find the demo through the pointer, unless home has its own runner.
        plain = root == home or not runner_alive(home)
        if root != home and plain:
            write_demo_pointer(home, root)
            stack.callback(clear_demo_pointer, home)
        state_arg = "" if plain else f" --state-dir {shlex.quote(str(root))}"
        print(banner(root, socket, slugs, web_url, own_command(), state_arg), flush=True)
        daemon = Daemon(config_path, root, stop_agents=True)
        try:
            code = run_daemon(daemon)
        except KeyboardInterrupt:  # Ctrl-C before the runner took over the signal
            code = 130
        finally:
            stop_tmux(socket, slugs)
            remove_stale_runner_info(root)
    where = f"--state-dir {shlex.quote(str(root))} --config {shlex.quote(str(config_path))}"
    check = f"{own_command()} doctor {where}"
    print(f"agentbridge demo: stopped. Check it with: {check}", file=sys.stderr)
    return code
