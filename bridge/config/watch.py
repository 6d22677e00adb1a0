"""Hot reload of ``agents.yaml``: a good edit takes effect, a broken one changes nothing.

The parent directory is watched, not the file, because editors save by writing a new file and
renaming it over the old one, which a watch on the old inode would miss. Spawned agents (one
YAML file each in the state dir) are watched the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import watchfiles

from bridge.config.model import Config, ConfigError, load_config

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
    """
    target = path.resolve()
    extra = extra_dir.resolve() if extra_dir else None
    if extra:
        extra.mkdir(parents=True, exist_ok=True)
    last_text = initial if initial is not None else config_snapshot(path, extra_dir)

    def relevant(_: watchfiles.Change, changed: str) -> bool:
        p = Path(changed).resolve()
        return p == target or (extra is not None and p.parent == extra and p.suffix == ".yaml")

    watched = [target.parent, *([extra] if extra else [])]
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
        text = config_snapshot(path, extra_dir)
        if text is None or text == last_text:
            continue
        last_text = text
        try:
            config = load() if load else load_config(path)
        except ConfigError as err:
            for line in err.errors:
                log.error("config: %s", line)
            log.error("config: %s has errors; still running the last good config", path)
            continue
        log.info("config: reloaded %s (%d agents)", path, len(config.agents))
        on_change(config)


#: Even without an event the files are compared this often (a missed inotify event, an edit
#: made while the watch was being set up).
RECHECK_MS = 5000


def config_snapshot(path: Path, extra_dir: Path | None = None) -> str | None:
    """The config file's text plus every spawned agent's, to tell whether anything changed."""
    text = _read(path)
    if text is None or extra_dir is None or not extra_dir.is_dir():
        return text
    return text + "".join(f"\0{p.name}\0{_read(p)}" for p in sorted(extra_dir.glob("*.yaml")))


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None
