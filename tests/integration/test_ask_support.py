"""``validate`` and ``doctor`` refuse ``permissions: ask`` where the agent cannot ask.

The real pinned CLIs pass; an old CLI (a stand-in script printing an old version) and a bypass
flag in ``args`` are refused with one line naming the agent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO


def write(tmp_path: Path, agents: list[dict[str, object]]) -> Path:
    config = tmp_path / "agents.yaml"
    config.write_text(yaml.safe_dump({"agents": agents}))
    return config


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**__import__("os").environ, "AGENTBRIDGE_HOME": str(tmp_path / "state")},
        check=False,
    )


def old_cli(tmp_path: Path, name: str, version_line: str) -> str:
    script = tmp_path / name
    script.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    script.chmod(0o755)
    return str(script)


def test_validate_refuses_ask_for_an_old_cli_or_a_bypass_flag(
    tmp_path: Path, cli_bins: dict[str, Path]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    agents: list[dict[str, object]] = [
        {"slug": "fine-claude", "workdir": str(work), "bin": str(cli_bins["claude"]),
         "permissions": "ask"},
        {"slug": "fine-codex", "runtime": "codex", "workdir": str(work),
         "bin": str(cli_bins["codex136"]), "permissions": "ask"},
    ]  # fmt: skip
    assert run(tmp_path, "validate", "--config", str(write(tmp_path, agents))).stdout == "OK\n"

    agents += [
        {"slug": "old-codex", "runtime": "codex", "workdir": str(work), "permissions": "ask",
         "bin": old_cli(tmp_path, "codex", "codex-cli 0.120.0")},
        {"slug": "bypassed", "workdir": str(work), "bin": str(cli_bins["claude"]),
         "permissions": "ask", "args": ["--dangerously-skip-permissions"]},
    ]  # fmt: skip
    config = write(tmp_path, agents)
    out = run(tmp_path, "validate", "--config", str(config))
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert len(lines) == 2
    assert "agent 'old-codex': permissions: ask cannot work: codex 0.120.0 is older" in lines[0]
    assert "agent 'bypassed'" in lines[1] and "--dangerously-skip-permissions" in lines[1]

    doctor = run(tmp_path, "doctor", "--json", "--config", str(config))
    found = {c["agent"]: c["ok"] for c in json.loads(doctor.stdout) if c["name"] == "permissions"}
    assert found == {"fine-claude": True, "fine-codex": True, "old-codex": False, "bypassed": False}
