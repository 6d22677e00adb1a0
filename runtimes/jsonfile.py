"""Merging a few keys into a JSON file someone else also writes, without clobbering it."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def flocked(lock: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock`` (created 0600), held for the block: a cross-process
    mutex that the kernel releases if the holder dies."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def merge_json(path: Path, update: Callable[[dict[str, Any]], bool]) -> bool:
    """Read ``path`` (missing = ``{}``), let ``update`` mutate it, write it back atomically.

    ``update`` returns whether it changed anything; nothing is written otherwise, so an
    already-prepared file is never touched. A file that is not a JSON object is left alone and
    reported, because overwriting a user's broken config would lose their settings.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with flocked(path.with_name(path.name + ".agentbridge.lock")):
        data: dict[str, Any] = {}
        if path.exists():
            raw = path.read_text(encoding="utf-8")
            if raw.strip():
                loaded = json.loads(raw)
                if not isinstance(loaded, dict):
                    raise ValueError(f"{path}: expected a JSON object")
                data = loaded
        if not update(data):
            return False
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
        atomic_write_text(path, json.dumps(data, indent=2) + "\n", mode=mode)
        return True


def atomic_write_text(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically: see :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = 0o600, sync: bool = False) -> None:
    """Write ``data`` to ``path`` so a reader sees the old or the new file, never half of one.

    A temporary file (created ``mode``, never wider) in the same directory, then ``os.replace``;
    the temporary file is removed if anything fails; ``sync`` also fsyncs it first (for data that
    must survive a power cut, like a file a person sent). The one atomic-write helper of the
    project (``bridge`` uses it too).
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
