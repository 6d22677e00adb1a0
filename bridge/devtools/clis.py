"""The agent CLIs tests, benches, the demo and the container run: pinned here, and only here.

``PINS`` is the one place the CLI versions live. Everything else reads it (``deploy/Containerfile``
runs this file with ``--print-pins``; tests, benches and the demo call :func:`ensure`) or is
checked against it (``tests/unit/test_pins.py`` holds README, docs and bench to it). Every pin
must be in ``runtimes/tested.py``'s tested set.

Each CLI version is installed with npm once per machine into a prefix of its own, keyed by
package and version, under the cache dir (``$AGENTBRIDGE_CLI_CACHE``, default
``~/.cache/agentbridge/cli``), e.g. ``claude-code-2.1.337/``: changing a pin installs the new
version next to the old one instead of reusing (or overwriting under a running test) a stale
install. A file lock makes parallel test workers share one install instead of racing.

Channels (``$AGENTBRIDGE_CLI_CHANNEL``):

* ``pinned`` (the default): the versions in ``PINS``.
* ``latest``: each pin that follows releases gets the version ``npm view PACKAGE version``
  resolves now (the ``latest`` dist-tag), installed into its own prefix like any other version.
  ``codex136`` and ``claude332`` do not follow: they stay on 0.136.0 (the old rollout shape)
  and 2.1.332 (no ``Interrupt`` hook, the old status-line percentage).
  ``bash tests/run.sh --latest-clis`` runs the suite this way.

Stdlib only, and nothing imported from ``bridge``: the container build runs this file on its own.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import functools
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

CHANNEL_ENV = "AGENTBRIDGE_CLI_CHANNEL"
CACHE_ENV = "AGENTBRIDGE_CLI_CACHE"
LATEST_ENV = "AGENTBRIDGE_CLI_LATEST"
CHANNELS = ("pinned", "latest")

#: What ``npm view PACKAGE version`` must print for a release we install (no ranges, no tags).
_VERSION = re.compile(r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?")


@dataclasses.dataclass(frozen=True, slots=True)
class Pin:
    name: str
    """The pin's key: what tests and benches ask :func:`ensure` for."""
    runtime: str
    """The ``runtime`` of agents.yaml this CLI serves (the key in ``runtimes/tested.py``)."""
    package: str
    version: str
    bin: str
    follows_latest: bool = True
    """Whether the ``latest`` channel replaces ``version`` with the newest release."""

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"


PINS: dict[str, Pin] = {
    "claude": Pin("claude", "claude", "@anthropic-ai/claude-code", "2.1.337", "claude"),
    # The last release before the ``Interrupt`` hook and the auto-compact-window meaning of the
    # status line's ``used_percentage`` (FORMATS.md): kept so the fallbacks stay tested.
    "claude332": Pin(
        "claude332",
        "claude",
        "@anthropic-ai/claude-code",
        "2.1.332",
        "claude",
        follows_latest=False,
    ),
    "codex": Pin("codex", "codex", "@openai/codex", "0.171.0", "codex"),
    # The rollout shape before ``item_completed`` (FORMATS.md): kept on this version on purpose.
    "codex136": Pin("codex136", "codex", "@openai/codex", "0.136.0", "codex", follows_latest=False),
}


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV)
    path = Path(configured) if configured else Path("~/.cache/agentbridge/cli")
    return path.expanduser()


def channel() -> str:
    value = os.environ.get(CHANNEL_ENV, "").strip() or "pinned"
    if value not in CHANNELS:
        raise ValueError(f"{CHANNEL_ENV}={value!r}: expected one of {', '.join(CHANNELS)}")
    return value


def _already_resolved(package: str) -> str | None:
    """``package``'s version in ``$AGENTBRIDGE_CLI_LATEST`` (``--print-latest`` output)."""
    for spec in os.environ.get(LATEST_ENV, "").split():
        name, _, version = spec.rpartition("@")
        if name == package and _VERSION.fullmatch(version):
            return version
    return None


@functools.cache
def latest_version(package: str) -> str:
    """The version npm's ``latest`` dist-tag names now (asked once per process).

    ``$AGENTBRIDGE_CLI_LATEST`` (what ``--print-latest`` printed) answers first:
    ``tests/run.sh --latest-clis`` resolves once, so every test worker runs the same versions and
    none of them needs the registry.
    """
    resolved = _already_resolved(package)
    if resolved:
        return resolved
    try:
        out = subprocess.run(
            ["npm", "view", package, "version"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"npm view {package} version: {exc}") from exc
    version = out.stdout.strip()
    if out.returncode != 0 or not _VERSION.fullmatch(version):
        detail = (out.stderr.strip() or version or f"exit {out.returncode}").splitlines()[-1]
        raise RuntimeError(f"npm view {package} version: {detail}")
    return version


def resolve(name: str) -> Pin:
    """The pin ``name`` on the current channel (for ``latest``: with the resolved version)."""
    pin = PINS[name]
    if channel() == "latest" and pin.follows_latest:
        return dataclasses.replace(pin, version=latest_version(pin.package))
    return pin


def prefix(pin: Pin) -> Path:
    """The npm prefix for exactly this package and version, e.g. ``codex-0.171.0``."""
    return cache_dir() / f"{pin.package.rsplit('/', 1)[-1]}-{pin.version}"


def bin_path(pin: Pin) -> Path:
    return prefix(pin) / "node_modules" / ".bin" / pin.bin


def installed_version(pin: Pin) -> str | None:
    """The version npm put into ``pin``'s prefix, or None when it holds no complete install."""
    manifest = prefix(pin) / "node_modules" / pin.package / "package.json"
    if not manifest.exists() or not bin_path(pin).exists():
        return None
    try:
        return str(json.loads(manifest.read_text())["version"])
    except (ValueError, KeyError, TypeError):
        return None


def ensure(name: str) -> Path:
    """Install the CLI ``name`` (on the current channel) if missing; return its executable."""
    pin = resolve(name)
    if installed_version(pin) == pin.version:
        return bin_path(pin)
    where = prefix(pin)
    where.mkdir(parents=True, exist_ok=True)
    with (where / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed_version(pin) != pin.version:
            print(f"installing {pin.spec} into {where}", file=sys.stderr)
            subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(where), pin.spec],
                check=True,
                stdout=subprocess.DEVNULL,
            )
    if installed_version(pin) != pin.version:
        raise RuntimeError(f"npm did not install {pin.spec} into {where}")
    return bin_path(pin)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Install the agent CLIs tests and the demo run (see this module's docstring).",
    )
    parser.add_argument("names", nargs="*", help=f"which pins (default: all of {', '.join(PINS)})")
    parser.add_argument(
        "--print-pins",
        action="store_true",
        help="print PACKAGE@VERSION of each pin on the current channel, one a line; no install",
    )
    parser.add_argument(
        "--print-latest",
        action="store_true",
        help=f"print PACKAGE@VERSION of the newest release of each package the latest channel "
        f"follows, one a line (the value for ${LATEST_ENV}); install nothing",
    )
    args = parser.parse_args(argv)
    if args.print_latest:
        try:
            for package in dict.fromkeys(p.package for p in PINS.values() if p.follows_latest):
                print(f"{package}@{latest_version(package)}")
        except RuntimeError as exc:
            print(f"clis: {exc}", file=sys.stderr)
            return 1
        return 0
    names: list[str] = args.names or list(PINS)
    unknown = [n for n in names if n not in PINS]
    if unknown:
        parser.error(f"unknown pin(s) {', '.join(unknown)} (known: {', '.join(PINS)})")
    try:
        if args.print_pins:
            for name in names:
                print(resolve(name).spec)
            return 0
        for name in names:
            pin = resolve(name)
            how = channel() if pin.follows_latest else "pinned"
            print(f"{name}: {pin.spec} ({how}) {ensure(name)}")
    except (ValueError, RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"clis: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
