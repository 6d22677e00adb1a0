"""Pinned agent CLIs installed with npm into a per-machine cache dir, once.

Tests and the demo drive the real CLIs at known versions, so transcripts and flags match what
FORMATS.md verified. Each pin gets its own npm prefix under the cache dir
(``$AGENTBRIDGE_CLI_CACHE``, default ``~/.cache/agentbridge/cli``); a file lock makes parallel
test workers share one install instead of racing.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Pin:
    name: str
    package: str
    version: str
    bin: str


PINS: dict[str, Pin] = {
    "claude": Pin("claude", "@anthropic-ai/claude-code", "2.1.328", "claude"),
    "codex": Pin("codex", "@openai/codex", "0.169.0", "codex"),
    "codex136": Pin("codex136", "@openai/codex", "0.136.0", "codex"),
}


def cache_dir() -> Path:
    configured = os.environ.get("AGENTBRIDGE_CLI_CACHE")
    path = Path(configured) if configured else Path("~/.cache/agentbridge/cli")
    return path.expanduser()


def bin_path(name: str) -> Path:
    pin = PINS[name]
    return cache_dir() / name / "node_modules" / ".bin" / pin.bin


def _installed_version(name: str) -> str | None:
    pin = PINS[name]
    manifest = cache_dir() / name / "node_modules" / pin.package / "package.json"
    if not manifest.exists() or not bin_path(name).exists():
        return None
    import json

    try:
        return str(json.loads(manifest.read_text())["version"])
    except (ValueError, KeyError):
        return None


def ensure(name: str) -> Path:
    """Install the pinned CLI if missing; return its executable."""
    pin = PINS[name]
    if _installed_version(name) == pin.version:
        return bin_path(name)
    prefix = cache_dir() / name
    prefix.mkdir(parents=True, exist_ok=True)
    with (prefix / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version(name) != pin.version:
            print(f"installing {pin.package}@{pin.version} into {prefix}", file=sys.stderr)
            subprocess.run(
                [
                    "npm",
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--prefix",
                    str(prefix),
                    f"{pin.package}@{pin.version}",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
    if _installed_version(name) != pin.version:
        raise RuntimeError(f"npm did not install {pin.package}@{pin.version} into {prefix}")
    return bin_path(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", default=list(PINS), help="which pins to install")
    args = parser.parse_args(argv)
    for name in args.names:
        print(f"{name}: {ensure(name)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
