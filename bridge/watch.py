"""Hot reload of ``agents.yaml``: a good edit takes effect, a broken one changes nothing.

The parent directory is watched, not the file, because editors save by writing a new file and
renaming it over the old one, which a watch on the old inode would miss.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import watchfiles

from bridge.config import Config, ConfigError, load_config

log = logging.getLogger("agentbridge.config")


async def watch_config(
    path: Path, on_change: Callable[[Config], None], stop: asyncio.Event
) -> None:
    target = path.resolve()
    last_text: str | None = _read(target)

    def only_config(_: watchfiles.Change, changed: str) -> bool:
        return Path(changed).resolve() == target

    async for _ in watchfiles.awatch(
        target.parent,
        watch_filter=only_config,
        stop_event=stop,
        debounce=200,
        step=50,
        recursive=False,
    ):
        text = _read(target)
        if text is None or text == last_text:
            continue
        last_text = text
        try:
            config = load_config(path)
        except ConfigError as err:
            for line in err.errors:
                log.error("config: %s", line)
            log.error("config: %s has errors; still running the last good config", path)
            continue
        log.info("config: reloaded %s (%d agents)", path, len(config.agents))
        on_change(config)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None
