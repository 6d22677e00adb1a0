"""Helpers shared by the transcript parser tests: fixtures, golden files, ledger, mutations.

Golden files live in ``tests/golden/`` and are only ever rewritten on purpose:
``UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_parse_*.py`` rewrites them and skips the
comparing tests (so the run says so); review the diff before committing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtimes.events import Event, EventKind, LineResult

Parser = Callable[[bytes, int, str], LineResult]

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"  # copies of ../shared/fixtures (real CLI output)
GOLDEN_DIR = REPO / "tests" / "golden"
TEXT_LIMIT = 80

CLAUDE_FIXTURE = FIXTURES / "claude-2.1.328" / "0f4d7a0e-3a55-4c3e-9d8e-1a2b3c4d5e6f.jsonl"
CODEX_169 = next((FIXTURES / "codex-0.169.0").glob("rollout-*.jsonl"), FIXTURES / "missing")
CODEX_136 = next((FIXTURES / "codex-0.136.0").glob("rollout-*.jsonl"), FIXTURES / "missing")


def read_lines(path: Path) -> list[tuple[int, bytes]]:
    """(byte offset, line without newline) for every line, as a tailer would hand them over."""
    data = path.read_bytes()
    out: list[tuple[int, bytes]] = []
    offset = 0
    for raw in data.split(b"\n"):
        if raw:
            out.append((offset, raw))
        offset += len(raw) + 1
    return out


def parse_lines(parse: Parser, lines: list[tuple[int, bytes]], source: str) -> list[LineResult]:
    return [parse(raw, offset, source) for offset, raw in lines]


def all_events(results: list[LineResult]) -> list[Event]:
    return [event for result in results for event in result.events]


def ledger(events: list[Event]) -> list[Event]:
    """What the downstream ledger keeps: the first event of every id, in order."""
    seen: set[str] = set()
    kept: list[Event] = []
    for event in events:
        if event.id not in seen:
            seen.add(event.id)
            kept.append(event)
    return kept


def mirrored(events: list[Event]) -> list[tuple[str, str]]:
    """(kind, text) of what would reach the chat, after ledger dedupe."""
    return [(e.kind.value, e.text) for e in ledger(events) if e.mirrored]


def assert_no_semantic_duplicates(events: list[Event]) -> None:
    """No two surviving mirrored events may say the same thing under different ids.

    Tool events are the same thing when they share kind and call id; anything else when it
    shares kind and text. (Fixtures contain no legitimately repeated message.)
    """
    keys: dict[tuple[str, str], str] = {}
    for event in ledger(events):
        if not event.mirrored:
            continue
        if event.kind in (EventKind.TOOL_CALL, EventKind.TOOL_RESULT):
            key = (event.kind.value, event.call_id or "")
        else:
            key = (event.kind.value, event.text.strip())
        assert key not in keys, f"{event.id} repeats {keys[key]}: {key}"
        keys[key] = event.id


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > TEXT_LIMIT:
        return value[:TEXT_LIMIT] + f"…(+{len(value) - TEXT_LIMIT})"
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_short(v) for v in value]
    return value


def golden_rows(results: list[LineResult]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for index, result in enumerate(results):
        for e in result.events:
            row: dict[str, Any] = {
                "line": index,
                "kind": e.kind.value,
                "id": e.id,
                "text": _short(e.text),
                "tool": e.tool,
                "call_id": e.call_id,
                "is_error": e.is_error,
                "tokens": e.tokens,
            }
            if e.context_window is not None:
                row["context_window"] = e.context_window
            if e.meta:
                row["meta"] = _short(e.meta)
            rows.append(row)
    return rows


def check_golden(name: str, rows: list[dict[str, Any]]) -> None:
    """Compare with ``tests/golden/<name>.json``; rewrite it only when UPDATE_GOLDEN=1."""
    path = GOLDEN_DIR / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
        body = ",\n".join(json.dumps(row, ensure_ascii=False) for row in rows)
        path.write_text(f"[\n{body}\n]\n", encoding="utf-8")
        pytest.skip(f"rewrote {path.relative_to(REPO)}: review the diff")
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1, then review it"
    assert json.loads(path.read_text(encoding="utf-8")) == rows


def assert_offset_independent(parse: Parser, path: Path) -> None:
    """Starting the tail at any line gives exactly the ids of the whole-file parse from there."""
    lines = read_lines(path)
    whole = [[e.id for e in r.events] for r in parse_lines(parse, lines, path.name)]
    for start in range(len(lines)):
        resumed = [[e.id for e in r.events] for r in parse_lines(parse, lines[start:], path.name)]
        assert resumed == whole[start:], f"ids differ when resuming at line {start}"
    backwards = [parse(raw, offset, path.name) for offset, raw in reversed(lines)]
    assert [[e.id for e in r.events] for r in reversed(backwards)] == whole


#: Values of every JSON type, put in place of each field to check the parsers' type guards.
WRONG_VALUES: tuple[Any, ...] = (None, True, 0, -1, 1.5, "", "x", [], [None], {}, {"x": 1})


def _paths(value: Any, depth: int) -> Iterator[tuple[Any, ...]]:
    if depth == 0:
        return
    items: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value[:3]))
    for key, child in items:
        yield (key,)
        for sub in _paths(child, depth - 1):
            yield (key, *sub)


def _replaced(obj: Any, path: tuple[Any, ...], new: Any, delete: bool = False) -> Any:
    clone = json.loads(json.dumps(obj))
    target = clone
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = new
    return clone


def mutations(obj: dict[str, Any], type_names: tuple[str, ...], depth: int = 6) -> Iterator[bytes]:
    """Every record obtained by breaking one field of ``obj``.

    Each field (to ``depth``) is deleted, and replaced by each of :data:`WRONG_VALUES`; every
    ``type``/``subtype``/``role`` field also takes each of ``type_names``, so every handler meets
    payloads written for another one.
    """
    for path in _paths(obj, depth):
        candidates: list[Any] = list(WRONG_VALUES)
        if path[-1] in ("type", "subtype", "role"):
            candidates += type_names
        yield json.dumps(_replaced(obj, path, None, delete=True)).encode()
        for new in candidates:
            yield json.dumps(_replaced(obj, path, new)).encode()


MALFORMED: tuple[bytes, ...] = (
    b"",
    b"   ",
    b"{",
    b'{"type": "user", "message": {"content": "hi"',
    b"[]",
    b'"str"',
    b"null",
    b"42",
    b"true",
    b"\xff\xfe\x00\x01",
    b"[" * 100_000,
    b'{"n": ' + b"1" * 5000 + b"}",
    b"{'single': 'quotes'}",
    b'{"a": 1}{"b": 2}',
)

#: Well-formed objects that describe nothing: never bad, never an event.
EMPTY_OBJECTS: tuple[bytes, ...] = (
    b"{}",
    b'{"type": 5}',
    b'{"type": null, "payload": null}',
    b'{"type": "user"}',
    b'{"type": "assistant", "message": null}',
    b'{"type": "assistant", "message": {"content": null, "usage": "lots"}}',
    b'{"type": "user", "message": {"content": [null, 1, "x", {"type": "tool_result"}]}}',
    b'{"type": "system", "subtype": null}',
    b'{"type": "event_msg"}',
    b'{"type": "event_msg", "payload": []}',
    b'{"type": "event_msg", "payload": {"type": "item_completed", "item": null}}',
    b'{"type": "event_msg", "payload": {"type": "token_count", "info": null}}',
    b'{"type": "response_item", "payload": {"type": "function_call"}}',
    b'{"type": "compacted"}',
    b'{"type": "mystery", "payload": {"type": "mystery"}}',
)
