from __future__ import annotations

import os
from pathlib import Path

import pytest

from bridge.mirror import tail
from bridge.mirror.tail import read_new_lines
from bridge.store.position import Position

START = Position(0, None, 0)


def test_reads_complete_lines_and_leaves_a_partial_one(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    f.write_bytes(b'{"a": 1}\r\n\n{"b": 2}\n{"c": ')
    result = read_new_lines(f, START)
    assert [line.data for line in result.lines] == [b'{"a": 1}', b'{"b": 2}']
    assert result.position.offset == len(b'{"a": 1}\r\n\n{"b": 2}\n')
    with f.open("ab") as fh:
        fh.write(b"3}\n")
    again = read_new_lines(f, result.position)
    assert [line.data for line in again.lines] == [b'{"c": 3}']
    assert again.lines[0].offset == result.position.offset
    assert read_new_lines(f, again.position).lines == ()


def test_truncated_and_replaced_files_start_over_under_a_new_generation(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    f.write_bytes(b"one\ntwo\n")
    first = read_new_lines(f, START)
    f.write_bytes(b"x\n")  # truncated below the offset
    truncated = read_new_lines(f, first.position)
    assert truncated.reset == "truncated"
    assert truncated.position.generation == 1
    assert [line.data for line in truncated.lines] == [b"x"]
    replacement = tmp_path / "new.jsonl"
    replacement.write_bytes(b"fresh\n")
    os.replace(replacement, f)
    replaced = read_new_lines(f, truncated.position)
    assert replaced.reset == "replaced"
    assert replaced.position.generation == 2
    assert [line.data for line in replaced.lines] == [b"fresh"]


def test_missing_file_is_not_an_error(tmp_path: Path) -> None:
    result = read_new_lines(tmp_path / "absent.jsonl", START)
    assert result.lines == () and result.position == START


def test_ten_megabyte_line(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    big = b'{"text": "' + b"x" * (10 << 20) + b'"}'
    f.write_bytes(big + b"\nsmall\n")
    result = read_new_lines(f, START)
    assert [len(line.data) for line in result.lines] == [len(big), 5]


def test_runaway_line_is_skipped_not_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tail, "MAX_LINE", 4096)
    monkeypatch.setattr(tail, "READ_CHUNK", 1024)
    f = tmp_path / "t.jsonl"
    f.write_bytes(b"a" * 20000 + b"\nafter\n")
    result = read_new_lines(f, START)
    assert [line.oversized for line in result.lines] == [True, False]
    assert result.lines[-1].data == b"after"
    assert result.position.offset == f.stat().st_size


def test_reads_are_bounded_and_resume(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    f.write_bytes(b"".join(b"%06d\n" % i for i in range(200_000)))
    pos, seen = START, 0
    for _ in range(100):
        result = read_new_lines(f, pos, max_bytes=100_000)
        if not result.lines:
            break
        assert int(result.lines[0].data) == seen
        seen += len(result.lines)
        pos = result.position
    assert seen == 200_000
