"""The last agents.yaml the runner ran, kept in the state dir for a start with a broken one.

A broken edit never changes a running fleet (:mod:`bridge.config.watch`). A runner that starts
(a reboot, a systemd restart, an upgrade) after such an edit has no running config to keep, and
exiting would leave every agent unmirrored and unsteerable until someone reads the log. So each
config the runner loads successfully is copied to ``<state dir>/config-last-good.yaml``, and a
start whose agents.yaml cannot be loaded runs on that copy instead: the same rule as the hot
reload ("a broken edit changes nothing"), said loudly: every problem line on stderr and in the
log at ERROR, and in ``agentbridge status`` until a good edit is loaded. With no copy (a first
start) the runner exits with status 2 and the problems, one line each; the systemd unit does not
restart on that status (``RestartPreventExitStatus=2``), so the error is not buried in a crash
loop.

The copy is parsed as if it were agents.yaml (same path, so relative work dirs mean the same
directories), with the spawned agents of the state dir next to it as usual.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from bridge.config.errors import ConfigError
from bridge.config.model import Config
from bridge.config.reading import read_bytes, read_config_text
from bridge.config.spawned import load_fleet
from runtimes.jsonfile import atomic_write_text

log = logging.getLogger("agentbridge.config")

FILE = "config-last-good.yaml"


@dataclass
class Loaded:
    """A fleet config and where it came from."""

    config: Config
    problems: list[str] = field(default_factory=list)
    """Empty when agents.yaml itself was loaded; else why not (each line names the file) and a
    last line saying which copy runs instead."""


def path_in(state_dir: Path) -> Path:
    return state_dir / FILE


def load_and_remember(config_path: Path, state_dir: Path) -> Config:
    """agents.yaml (plus spawned agents), read once; on success that text becomes the last good
    copy. Raises ConfigError as :func:`bridge.config.spawned.load_fleet` does."""
    text = read_config_text(config_path)
    config = load_fleet(config_path, state_dir, text=text)
    remember(state_dir, text)
    return config


def remember(state_dir: Path, text: str) -> None:
    target = path_in(state_dir)
    try:
        if target.is_file() and read_bytes(target) == text.encode("utf-8"):
            return
    except ConfigError:
        pass  # whatever is there is replaced
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, text)  # 0600: it may name secrets' variables
    except OSError as err:  # a full disk must not stop a good config from running
        log.warning("config: could not keep a last good copy at %s: %s", target, err)


def load_at_start(config_path: Path, state_dir: Path) -> Loaded:
    """What a starting runner runs: agents.yaml, else the last good copy (with the problems
    to report), else ConfigError with agents.yaml's problems."""
    try:
        return Loaded(load_and_remember(config_path, state_dir))
    except ConfigError as err:
        broken = err
    copy = path_in(state_dir)
    try:
        text = read_config_text(copy)
        saved = copy.stat().st_mtime
        config = load_fleet(config_path, state_dir, text=text)
    except (ConfigError, OSError):
        raise broken from None  # no usable copy: agents.yaml's problems are the news
    stamp = time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(saved))
    running = (
        f"{config_path} cannot be loaded; running on the last good config (saved {stamp}, "
        f"{copy}) until a fixed {config_path.name} is saved"
    )
    return Loaded(config, [*broken.errors, running])
