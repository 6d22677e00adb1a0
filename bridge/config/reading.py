"""Reading a config file's bytes into text, whatever is saved in its place.

An editor, a sync tool or a bad ``cp`` can leave anything at ``agents.yaml``: bytes in another
encoding, a NUL, a truncated write, a multi-gigabyte file, a directory, a FIFO (whose read would
block forever), a dangling symlink or a symlink loop. Each is one clear line naming the file,
raised as :class:`ConfigError` like every other config problem, so the hot reload reports it and
keeps the running config, and ``run``/``validate`` print it instead of a traceback.
"""

from __future__ import annotations

import codecs
import errno
import os
import stat
from pathlib import Path

from bridge.config.errors import ConfigError

#: A config larger than this is refused unread: agents.yaml for a thousand agents is a few
#: hundred kilobytes, so a file this size is a mistake (a log or an archive saved over it), and
#: reading it whole on every change would stall the runner.
MAX_BYTES = 4 * 1024 * 1024

_OTHER_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def read_bytes(path: Path) -> bytes:
    """The file's bytes; ConfigError (one line) when it is not a readable regular file of at
    most :data:`MAX_BYTES`. Never blocks: a FIFO is refused, not read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(path, [f"{path}: cannot read: {_why(exc)}"]) from exc
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError(path, [f"{path}: cannot read: is a directory, not a file"])
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(path, [f"{path}: cannot read: not a regular file"])
        if info.st_size > MAX_BYTES:
            raise ConfigError(path, [f"{path}: {_too_big(info.st_size)}"])
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_BYTES:  # the file may grow while it is read
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_BYTES:
            raise ConfigError(path, [f"{path}: {_too_big(size)}"])
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigError(path, [f"{path}: cannot read: {_why(exc)}"]) from exc
    finally:
        os.close(fd)


def decode(data: bytes, path: Path) -> str:
    """UTF-8 text (a leading UTF-8 byte-order mark is dropped, as Windows editors write one);
    ConfigError naming the byte, line and column of the first problem."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    for bom, name in _OTHER_BOMS:
        if data.startswith(bom):
            raise ConfigError(path, [f"{path}: {name} text; save it as UTF-8"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = _where(data, exc.start)
        raise ConfigError(path, [f"{path}: not UTF-8 text (byte {exc.start}, {where})"]) from exc
    nul = text.find("\0")
    if nul >= 0:
        where = _where(data, len(text[:nul].encode()))
        raise ConfigError(path, [f"{path}: {where}: a NUL byte (not a text file?)"])
    return text


def read_config_text(path: Path) -> str:
    """What ``load_config`` parses: :func:`read_bytes` then :func:`decode`."""
    return decode(read_bytes(path), path)


def _where(data: bytes, offset: int) -> str:
    before = data[:offset]
    line = before.count(b"\n") + 1
    column = offset - (before.rfind(b"\n") + 1) + 1
    return f"line {line}, column {column}"


def _too_big(size: int) -> str:
    return f"file is {size} bytes, over the {MAX_BYTES // (1024 * 1024)} MiB a config may have"


def _why(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symlink loop"
    if exc.errno == errno.ENOENT and exc.filename is not None and os.path.islink(exc.filename):
        return "a symlink to a file that does not exist"
    return exc.strerror or str(exc)
