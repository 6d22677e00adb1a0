"""Hot reload of ``agents.yaml``: a good edit takes effect, a broken one changes nothing.

The parent directory is watched, not the file, because editors save by writing a new file and
renaming it over the old one, which a watch on the old inode would miss. Spawned agents (one
YAML file each in the state dir) are watched the same way.

A broken edit is reported (each problem one log line naming the file and field) and the running
config stays, whatever was saved: bytes that are not UTF-8, a NUL, a truncated file, a huge one,
a directory or a FIFO or a symlink loop in the file's place. The watch itself never ends on what
it finds on disk: a snapshot is bytes (or a description of why the file cannot be read), never a
strict decode, and every read and load runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import watchfiles

from bridge.config.errors import ConfigError
from bridge.config.model import Config, load_config
from bridge.config.reading import read_bytes

log = logging.getLogger("agentbridge.config")


async def watch_config(
    path: Path,
    on_change: Callable[[Config], None],
    stop: asyncio.Event,
    *,
    load: Callable[[], Config] | None = None,
    extra_dir: Path | None = None,
    initial: str | None = None,
) -> None:
    """Reload on every saved change of ``path`` (and of any YAML file in ``extra_dir``).

    ``initial`` is the snapshot the running config was loaded from, so an edit made before the
    watch is set up is not missed; a slow timeout re-check covers events inotify dropped.
    ``load`` runs in a worker thread.
    """
    target = _resolved(path)
    extra = _resolved(extra_dir) if extra_dir else None
    if extra:
        extra.mkdir(parents=True, exist_ok=True)
    if initial is None:
        initial = await asyncio.to_thread(config_snapshot, path, extra_dir)
    seen = initial
    running: str | None = seen  # the snapshot of the config in effect
    loader = load or (lambda: load_config(path))

    def relevant(_: watchfiles.Change, changed: str) -> bool:
        p = _resolved(Path(changed))
        return p == target or (extra is not None and p.parent == extra and p.suffix == ".yaml")

    watched = [target.parent, *([extra] if extra else [])]
    applying = False
    while not stop.is_set():
        try:
            async for _ in watchfiles.awatch(
                *watched,
                watch_filter=relevant,
                stop_event=stop,
                debounce=200,
                step=50,
                recursive=False,
                rust_timeout=RECHECK_MS,
                yield_on_timeout=True,
            ):
                text = await asyncio.to_thread(config_snapshot, path, extra_dir)
                if text == seen:
                    continue
                seen = text
                if text == running:
                    log.info("config: %s is back to the running config", path)
                    continue
                try:
                    config = await asyncio.to_thread(loader)
                except ConfigError as err:
                    _broken(path, err.errors)
                    continue
                except Exception as err:  # a bug in validation must not end the watch
                    log.exception("config: %s could not be loaded", path)
                    _broken(path, [f"{path}: could not be loaded: {err!r}"])
                    continue
                running = text
                log.info("config: reloaded %s (%d agents)", path, len(config.agents))
                applying = True
                on_change(config)
                applying = False
        except (OSError, RuntimeError) as err:  # the watched directory itself went away
            if applying:
                raise  # applying a good config failed: a bug, not the disk
            log.error("config: cannot watch %s (%s); trying again", path, err)
            await asyncio.sleep(RECHECK_MS / 1000)


def _broken(path: Path, errors: list[str]) -> None:
    for line in errors:
        log.error("config: %s", line)
    log.error("config: %s has errors; still running the last good config", path)


#: Even without an event the files are compared this often (a missed inotify event, an edit
#: made while the watch was being set up).
RECHECK_MS = 5000


def config_snapshot(path: Path, extra_dir: Path | None = None) -> str:
    """The config file's bytes plus every spawned agent's, to tell whether anything changed.

    Never raises: bytes that are not UTF-8 are kept as they are (surrogate escapes), and a file
    that cannot be read is represented by why, so a change to or from any state is seen.
    """
    text = _read(path)
    if extra_dir is None or not extra_dir.is_dir():
        return text
    try:
        files = sorted(extra_dir.glob("*.yaml"))
    except OSError as err:
        return f"{text}\0{err}"
    return text + "".join(f"\0{p.name}\0{_read(p)}" for p in files)


def _read(path: Path) -> str:
    try:
        return read_bytes(path).decode("utf-8", "surrogateescape")
    except ConfigError as err:
        return "\0unreadable\0" + "".join(err.errors)


def _resolved(path: Path) -> Path:
    """``path`` with symlinks resolved, or as it is when that fails (a symlink loop)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()
