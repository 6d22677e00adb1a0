"""What differs between the Claude Code releases a launch must know about (docs/cli-signals.md).

- The ``Interrupt`` hook exists from 2.1.335 on. An older Claude meets an ``Interrupt`` key in
  ``--settings`` with a blocking "Settings Warning ... Unknown hook event" dialog (seen on
  2.1.332), so the hook is registered only when the binary says it is new enough; when the
  version cannot be read it is left out (the transcript's interrupt marker stays the signal).
- 2.1.337 may offer, once, a smaller auto-compact window in a picker under the prompt (with a
  claude.ai login on 1M-context models). An ``autoCompactWindow`` in the flag settings holds it
  back; the value passed is the user's own from their settings files, else ``auto`` (the
  window Claude would use anyway), so the pre-answer never changes when Claude compacts.
  2.1.328 and 2.1.332 accept the key silently.

The version is read by running ``<bin> --version`` (about 0.1 s) once per binary file: the
answer is cached by path, size and mtime, so an upgrade in place is noticed.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: The first Claude with the ``Interrupt`` hook (its release notes, in 2.1.337's binary).
INTERRUPT_HOOK_SINCE = (2, 1, 335)

_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def version_tuple(version: str | None) -> tuple[int, ...] | None:
    match = _VERSION.search(version or "")
    return tuple(int(g) for g in match.groups()) if match else None


@functools.lru_cache(maxsize=64)
def _probe(path: str, size: int, mtime_ns: int) -> tuple[int, ...] | None:
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return version_tuple(out.stdout) if out.returncode == 0 else None


def cli_version(bin: str) -> tuple[int, ...] | None:
    """The version of the Claude binary ``bin`` (a path), or None when it cannot be read."""
    try:
        real = os.path.realpath(bin)
        stat = os.stat(real)
    except OSError:
        return None
    return _probe(real, stat.st_size, stat.st_mtime_ns)


def has_interrupt_hook(version: tuple[int, ...] | None) -> bool:
    return version is not None and version >= INTERRUPT_HOOK_SINCE


def _settings_files(config_dir: Path, workdir: Path) -> list[Path]:
    """Claude's settings files, lowest precedence first (user, project, local)."""
    return [
        config_dir / "settings.json",
        workdir / ".claude" / "settings.json",
        workdir / ".claude" / "settings.local.json",
    ]


def auto_compact_window(env: Mapping[str, str], config_dir: Path, workdir: Path) -> Any:
    """The ``autoCompactWindow`` to pass in the flag settings: whatever the user's own settings
    say (the most specific file wins, as in Claude), else ``auto``. None when the environment
    sets the window (``CLAUDE_CODE_AUTO_COMPACT_WINDOW`` already holds the offer back)."""
    if env.get("CLAUDE_CODE_AUTO_COMPACT_WINDOW"):
        return None
    found: Any = "auto"
    for path in _settings_files(config_dir, workdir):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("autoCompactWindow") not in (None, ""):
            found = data["autoCompactWindow"]
    return found
