"""The CLI versions each runtime was tested against.

A version is *tested* when the launch flags, the first-run pre-answers, the hooks and the
transcript parser were checked on it with the real CLI (FORMATS.md, docs/real-cli-recipe.md):
the recorded fixtures in ``tests/fixtures/`` and every version ``bridge/devtools/clis.py`` has
pinned since. ``doctor`` warns about an agent whose CLI reports a version outside this set; it
may still work, since the vendors only add fields between releases so far.

Add a version here when the whole suite passed on it (``bash tests/run.sh --latest-clis`` runs
it against the newest releases); ``tests/unit/test_pins.py`` checks that every pin is listed.
Imports nothing from ``bridge``.
"""

from __future__ import annotations

import re

TESTED: dict[str, frozenset[str]] = {
    # 2.1.332: the last without the `Interrupt` hook; 2.1.337: `Interrupt`, the auto-compact
    # window meaning of the status line's `used_percentage`.
    "claude": frozenset({"2.1.328", "2.1.332", "2.1.337"}),
    # 0.136.0: the older rollout shape (``user_message`` / ``agent_message``); 0.169.0 and up:
    # ``item_completed``.
    "codex": frozenset({"0.136.0", "0.169.0", "0.171.0"}),
}

_VERSION = re.compile(r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?")


def version_key(version: str) -> tuple[int, ...]:
    """Sort key for a release version ``X.Y.Z`` (a pre-release suffix is ignored)."""
    return tuple(int(part) for part in version.split("-", 1)[0].split("."))


def tested_versions(runtime_name: str) -> list[str]:
    """The tested versions of ``runtime_name``, oldest first (empty for an unknown runtime)."""
    return sorted(TESTED.get(runtime_name, ()), key=version_key)


def normalize(version: str) -> str | None:
    """The ``X.Y.Z[-pre]`` in what a CLI printed (``2.1.332 (Claude Code)``, ``codex-cli 0.171.0``,
    ``v0.171.0``), or None when there is none."""
    match = _VERSION.search(version)
    return match.group(0) if match else None


def is_tested(runtime_name: str, version: str) -> bool:
    """Whether ``version`` of ``runtime_name``'s CLI is one the runtime was tested against.

    ``version`` may be the bare number or the CLI's whole ``--version`` line. Unknown runtimes,
    unreadable versions and pre-releases of a tested version are not tested.
    """
    found = normalize(version)
    return found is not None and found in TESTED.get(runtime_name, frozenset())
