"""deploy/check-node.sh with a fake `node` and `npm`: it passes, warns or explains why not."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "deploy" / "check-node.sh"


def run(tmp_path: Path, version: str | None) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if version is not None:
        for name, text in (("node", version), ("npm", "10.0.0")):
            tool = bin_dir / name
            tool.write_text(f"#!/bin/sh\necho {text}\n")
            tool.chmod(0o755)
    env = {"PATH": str(bin_dir), "AGENTBRIDGE_NO_APT": "1"}
    return subprocess.run(
        ["/bin/bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=30
    )


@pytest.mark.parametrize(
    ("version", "code", "says"),
    [
        ("v22.11.0", 0, "Node v22.11.0: fine for both CLIs"),
        ("v24.1.0", 0, "fine for both CLIs"),
        ("v20.20.2", 0, "older than the 22 Claude Code's package asks for"),
        ("v14.21.3", 1, "is too old: the Codex CLI runs on Node and needs >= 16"),
        ("garbage", 1, "cannot read the Node version"),
        (None, 1, "node and npm are needed to install the agent CLIs"),
    ],
)
def test_check_node(tmp_path: Path, version: str | None, code: int, says: str) -> None:
    out = run(tmp_path, version)
    assert out.returncode == code, out.stderr
    assert says in out.stderr
