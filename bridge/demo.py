"""``agentbridge demo``: the whole runner on one machine with no keys and no network.

It starts the scripted fake model servers on loopback, installs the pinned real CLIs when
missing, writes a two-agent fleet (one Claude Code, one Codex) whose work dirs and CLI homes
live under the demo's state dir, and runs the real daemon on it with its own tmux socket. Ctrl-C
stops everything it started: the runner, the agents, the fake servers.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from bridge import paths
from bridge.daemon import Daemon, setup_logging
from bridge.devtools import clis
from bridge.devtools.fake_anthropic import FakeAnthropic
from bridge.devtools.fake_openai import FakeOpenAI

DEMO_SOCKET = "agentbridge-demo"


def demo_config(root: Path, anthropic_url: str, openai_url: str) -> dict[str, Any]:
    """A fleet of one Claude and one Codex agent wired to the fake model servers."""
    agents: list[dict[str, Any]] = []
    for slug, runtime in (("demo-claude", "claude"), ("demo-codex", "codex")):
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
        if runtime == "claude":
            agent["env"] = {
                "CLAUDE_CONFIG_DIR": str(home / "claude"),
                "ANTHROPIC_BASE_URL": anthropic_url,
                "ANTHROPIC_API_KEY": "sk-ant-demo-0000000000000000000000",
                "IS_SANDBOX": "1",
                "DISABLE_AUTOUPDATER": "1",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "XDG_DATA_HOME": str(home / "xdg-data"),
            }
        else:
            agent["env"] = {"CODEX_HOME": str(home / "codex"), "FAKE_KEY": "demo"}
            agent["args"] = [
                "-c",
                f'model_providers.fake={{name="fake",base_url="{openai_url}/v1",'
                f'env_key="FAKE_KEY",wire_api="responses"}}',
                "-c",
                "model_provider=fake",
                "-m",
                "gpt-5",
            ]
        agents.append(agent)
    return {"launch_stagger_seconds": 1, "agents": agents}


def banner(root: Path, socket: str, slugs: list[str]) -> str:
    home = f"AGENTBRIDGE_HOME={root}"
    lines = ["", "agentbridge demo is running (Ctrl-C stops it and everything it started).", ""]
    for slug in slugs:
        lines.append(f"  {slug}:")
        lines.append(f"    watch:  tmux -L {socket} attach -t {slug}   (detach: Ctrl-b d)")
        lines.append(f'    steer:  {home} agentbridge send {slug} "RUN: ls -la"')
    lines += ["", f"  status: {home} agentbridge status", ""]
    return "\n".join(lines)


def run_demo(state_dir: Path | None = None, verbose: bool = False) -> int:
    setup_logging(verbose)
    root = paths.state_dir(state_dir) if state_dir else paths.state_dir() / "demo"
    root.mkdir(parents=True, exist_ok=True)
    socket = os.environ.get("AGENTBRIDGE_TMUX_SOCKET") or DEMO_SOCKET
    os.environ["AGENTBRIDGE_TMUX_SOCKET"] = socket
    print("agentbridge demo: preparing the CLIs (first run installs them with npm)...", flush=True)
    for name in ("claude", "codex"):
        clis.ensure(name)
    with (
        FakeAnthropic(log_path=root / "anthropic-requests.jsonl") as anthropic,
        FakeOpenAI(log_path=root / "openai-requests.jsonl") as openai,
    ):
        config = demo_config(root, anthropic.url, openai.url)
        config_path = root / "agents.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        print(f"fake Anthropic API at {anthropic.url}, fake OpenAI API at {openai.url}")
        print(banner(root, socket, [a["slug"] for a in config["agents"]]), flush=True)
        daemon = Daemon(config_path, root, stop_agents=True)
        try:
            code = asyncio.run(daemon.run())
        finally:
            if socket == DEMO_SOCKET:  # our own server: leave nothing behind
                subprocess.run(
                    ["tmux", "-L", socket, "kill-server"], capture_output=True, check=False
                )
    print("agentbridge demo: stopped.", file=sys.stderr)
    return code
