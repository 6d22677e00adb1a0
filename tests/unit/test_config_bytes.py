"""Whatever bytes are saved as agents.yaml: one clear line each, and the hot reload survives
(issue 20 item 16). The start of a runner on a broken file is in
tests/integration/test_config_start.py."""

from __future__ import annotations

import asyncio
import codecs
import logging
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bridge.config import reading
from bridge.config.model import Config, ConfigError, load_config
from bridge.config.watch import config_snapshot, watch_config

GOOD = b"""agents:
  - slug: a
    runtime: claude
    workdir: .
    channel: "#a"
    env: {X: "1"}
    watchdog: {limit_grace_seconds: 3}
"""
#: The second good config the reload test ends on.
GOOD2 = GOOD.replace(b'X: "1"', b'X: "2"')


def broken_variants(seed: int, count: int) -> Iterator[bytes]:
    """Random bytes, truncations, flipped bytes, NULs, BOMs, other encodings, deep nesting,
    YAML oddities spliced in: a fixed seed, so a failure reproduces."""
    rng = random.Random(seed)
    specials = [b"&a ", b"*a", b"? [x]: y\n", b"<<: *a\n", b"!!python/object:os.system ", b"{"]
    specials += [b"\t", b"\r", b"\xc2\x85", b"\x01", b"\x7f", b"%YAML 1.1\n", b"---\n", b"...\n"]
    for _ in range(count):
        kind = rng.randrange(8)
        if kind == 0:
            yield bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        elif kind == 1:
            yield GOOD[: rng.randrange(len(GOOD))]
        elif kind == 2:
            data = bytearray(GOOD)
            for _ in range(rng.randrange(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            yield bytes(data)
        elif kind == 3:
            data = bytearray(GOOD)
            data.insert(rng.randrange(len(data) + 1), 0)
            yield bytes(data)
        elif kind == 4:
            boms = [codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE, b"\xef\xbb"]
            yield rng.choice(boms) + GOOD
        elif kind == 5:
            yield GOOD.decode().encode(rng.choice(["utf-16-le", "utf-32", "cp037"]))
        elif kind == 6:
            yield rng.choice([b"[", b"{a: ", b"- "]) * rng.randrange(200, 1500)
        else:
            data = bytearray(GOOD)
            at = rng.randrange(len(data) + 1)
            data[at:at] = rng.choice(specials)
            yield bytes(data)


def assert_clear(err: ConfigError, path: Path) -> None:
    assert err.errors, "a ConfigError names at least one problem"
    for line in err.errors:
        assert "\n" not in line and line.startswith(str(path)), line


def test_random_and_damaged_bytes_are_one_clear_line_each(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    loaded = 0
    for data in broken_variants(seed=20, count=250):
        path.write_bytes(data)
        try:
            load_config(path)
        except ConfigError as err:
            assert_clear(err, path)
        else:
            loaded += 1  # a damaged file that is still a valid config (a flipped comment byte)
    assert loaded < 60


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (GOOD[:-9] + b"\xff" + GOOD[-9:], "not UTF-8 text (byte "),
        (b"agents: []\x00\n", "line 1, column 11: a NUL byte"),
        (codecs.BOM_UTF16_LE + GOOD.decode().encode("utf-16-le"), "UTF-16 text; save it as UTF-8"),
        (b"agents:\n  - slug: a\x01\n", "line 2, column 12: invalid YAML: character #x0001"),
        (b"[" * 1500, "nested too deeply"),
        (GOOD[:40], "agents[0]"),  # truncated: the field that is missing or cut
    ],
)
def test_each_kind_of_damage_says_what_and_where(
    tmp_path: Path, data: bytes, expected: str
) -> None:
    path = tmp_path / "agents.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert_clear(info.value, path)
    assert expected in " ".join(info.value.errors)


def test_a_utf8_byte_order_mark_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_bytes(codecs.BOM_UTF8 + GOOD)
    assert load_config(path).agents[0].slug == "a"


def make_dir(path: Path) -> None:
    path.mkdir()


def make_fifo(path: Path) -> None:
    os.mkfifo(path)  # a read would block forever: refused unread


def make_loop(path: Path) -> None:
    path.symlink_to(path.name)


def make_dangling(path: Path) -> None:
    path.symlink_to("gone.yaml")


def make_huge(path: Path) -> None:
    with path.open("wb") as out:
        out.write(GOOD)
        out.truncate(reading.MAX_BYTES + 1)  # sparse: cheap to make, refused by its size


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (make_dir, "cannot read: is a directory"),
        (make_fifo, "cannot read: not a regular file"),
        (make_loop, "cannot read: a symlink loop"),
        (make_dangling, "cannot read: a symlink to a file that does not exist"),
        (make_huge, "over the 4 MiB a config may have"),
    ],
)
def test_something_else_in_the_files_place(
    tmp_path: Path, make: Callable[[Path], None], expected: str
) -> None:
    path = tmp_path / "agents.yaml"
    make(path)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert_clear(info.value, path)
    assert expected in info.value.errors[0]
    assert config_snapshot(path, tmp_path / "spawned").startswith("\0unreadable\0")


def test_an_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Permissions cannot stop root (who runs the suite in a container), so the OS's refusal
    is what stands in: the error ``open`` gives for a mode-000 file."""
    path = tmp_path / "agents.yaml"
    path.write_bytes(GOOD)
    real_open = os.open

    def refuse(file: object, *args: object, **kwargs: object) -> int:
        if Path(str(file)) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reading.os, "open", refuse)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.errors == [f"{path}: cannot read: Permission denied"]


def test_the_watch_reports_every_broken_save_keeps_running_and_takes_the_next_good_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "agents.yaml"
    path.write_bytes(GOOD)
    seen: list[Config] = []
    caplog.set_level(logging.INFO, logger="agentbridge.config")
    saves: list[Callable[[], None]] = [
        lambda: path.write_bytes(b"agents:\n  - slug: \xff\n"),  # the byte of the report
        lambda: path.write_bytes(GOOD[:30]),
        lambda: path.write_bytes(b"agents: \x00"),
        lambda: path.write_bytes(codecs.BOM_UTF16_LE + GOOD.decode().encode("utf-16-le")),
        lambda: path.write_bytes(b"[" * 1500),
    ]
    for i, data in enumerate(broken_variants(seed=16, count=20)):
        data += f"\n# {i}\n".encode()  # each save differs from the one before
        path.write_bytes(data)
        try:
            load_config(path)
        except Exception:  # broken (the test above says how it is reported)
            saves.append(lambda data=data: path.write_bytes(data))
    path.write_bytes(GOOD)

    def replace_with(make: Callable[[Path], None]) -> Callable[[], None]:
        def go() -> None:
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            else:
                path.unlink(missing_ok=True)
            make(path)

        return go

    saves += [replace_with(make) for make in (make_dir, make_fifo, make_loop, make_huge)]

    async def until(cond: Callable[[], object], what: str) -> None:
        for _ in range(300):
            if cond():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(watch_config(path, seen.append, stop, initial=GOOD.decode()))
        for n, save in enumerate(saves, start=1):
            save()
            await until(
                lambda n=n: (
                    caplog.text.count("still running the last good config") >= n or task.done()
                ),
                f"broken save {n} reported",
            )
            assert not task.done(), task.exception()
        replace_with(lambda p: p.write_bytes(GOOD2))()
        await until(lambda: seen or task.done(), "the good save loaded")
        assert not task.done(), task.exception()
        stop.set()
        await task

    asyncio.run(scenario())
    assert [c.agents[0].env for c in seen] == [{"X": "2"}]
    assert "not UTF-8 text (byte 18, line 2, column 11)" in caplog.text
