"""deploy/check-node.sh states what the pinned CLIs' own package.json "engines" ask for."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).parents[2] / "deploy" / "check-node.sh"


def engines_major(bin_path: Path) -> int:
    """The ``node >=N`` major of the npm package that provides ``bin_path``."""
    real = Path(os.path.realpath(bin_path))
    package = next(p / "package.json" for p in real.parents if (p / "package.json").exists())
    wanted = json.loads(package.read_text())["engines"]["node"]
    found = re.fullmatch(r">=\s*(\d+)(?:\.\d+)*", wanted.strip())
    assert found, wanted
    return int(found.group(1))


def script_constant(name: str) -> int:
    found = re.search(rf"^{name}=(\d+)$", SCRIPT.read_text(), re.M)
    assert found, name
    return int(found.group(1))


def test_the_script_asks_what_the_pinned_packages_ask(cli_bins: dict[str, Path]) -> None:
    assert engines_major(cli_bins["claude"]) == script_constant("CLAUDE_NODE_MIN")
    assert engines_major(cli_bins["codex"]) == script_constant("CODEX_NODE_MIN")
    assert engines_major(cli_bins["codex136"]) <= script_constant("CODEX_NODE_MIN")
