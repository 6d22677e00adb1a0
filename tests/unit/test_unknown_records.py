"""Transcript record types the parsers do not know: named per line, counted per agent by the
mirror, shown by ``status --json`` and ``doctor`` (the early sign of a CLI format change)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bridge.app.status import as_json, collect
from bridge.config.model import parse_config
from bridge.doctor.basics import version_check
from bridge.doctor.records import check_unknown_records
from bridge.store import unknown_records
from bridge.store.db import Store
from runtimes import codex_parse, known_records
from runtimes.claude_parse import parse_claude_line
from runtimes.codex_parse import parse_codex_line
from tests.unit.test_mirror import Rig, assistant

FIXTURES = Path(__file__).parents[2] / "tests" / "fixtures"


def fixture_lines(pattern: str) -> list[bytes]:
    files = sorted(FIXTURES.glob(pattern))
    assert files, pattern
    return [line for f in files for line in f.read_bytes().splitlines()]


def test_the_recorded_transcripts_hold_no_unknown_records() -> None:
    claude = fixture_lines("claude-*/*.jsonl")
    codex = fixture_lines("codex-*/rollout-*.jsonl")
    assert [parse_claude_line(x, 0, "s").unknown for x in claude] == [None] * len(claude)
    assert [parse_codex_line(x, 0, "s").unknown for x in codex] == [None] * len(codex)


@pytest.mark.parametrize(
    ("record", "unknown"),
    [
        ({"type": "brand-new-thing"}, "brand-new-thing"),
        ({"type": "system", "subtype": "brand_new"}, "system/brand_new"),
        ({"type": "system", "subtype": "turn_duration"}, None),
        ({"type": "file-history-snapshot"}, None),
        ({"no": "type"}, "(no type)"),
    ],
)
def test_claude_unknown_types(record: dict[str, object], unknown: str | None) -> None:
    assert parse_claude_line(json.dumps(record).encode(), 0, "s").unknown == unknown


@pytest.mark.parametrize(
    ("record", "unknown"),
    [
        ({"type": "brand_new", "payload": {}}, "brand_new"),
        ({"type": "event_msg", "payload": {"type": "new_event"}}, "event_msg/new_event"),
        ({"type": "response_item", "payload": {"type": "new_item"}}, "response_item/new_item"),
        (
            {"type": "event_msg", "payload": {"type": "item_completed", "item": {"type": "X"}}},
            "item_completed/X",
        ),
        ({"type": "event_msg", "payload": {"type": "token_count"}}, None),
        ({"type": "turn_context", "payload": {"type": "whatever"}}, None),
    ],
)
def test_codex_unknown_types(record: dict[str, object], unknown: str | None) -> None:
    assert parse_codex_line(json.dumps(record).encode(), 0, "s").unknown == unknown


def test_every_codex_event_the_parser_handles_is_known() -> None:
    assert set(codex_parse._EVENT_HANDLERS) <= known_records.CODEX_SUBTYPES["event_msg"]


def test_a_bad_line_is_bad_not_unknown() -> None:
    result = parse_claude_line(b"{not json", 0, "s")
    assert result.bad and result.unknown is None


def test_counts_merge_per_agent_and_summarise(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    tally = unknown_records.UnknownTally(store, "web")
    for name in ("a", None, "b", "a"):
        tally.note(name)
    tally.flush()
    tally.flush()  # nothing new: no write, no double count
    unknown_records.add(store, "web", Counter({"a": 1}))
    assert unknown_records.counts(store, "web") == {"a": 3, "b": 1}
    assert unknown_records.counts(store, "api") == {}
    assert unknown_records.summary({"a": 3, "b": 1}) == "4 unknown records: a ×3, b ×1"
    store.close()


def test_the_mirror_persists_the_counts(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.append(
        assistant(1),
        '{"type": "brand-new-record"}\n',
        '{"type": "system", "subtype": "brand_new"}\n',
        '{"type": "brand-new-record"}\n',
        assistant(2),
    )

    def counted() -> dict[str, int]:
        with_store = Store(rig.db, readonly=True)
        try:
            return unknown_records.counts(with_store, "mx")
        finally:
            with_store.close()

    store = rig.run_until(lambda: len(rig.posted()) == 2 and counted())
    assert rig.posted() == ["line 1", "line 2"]
    assert unknown_records.counts(store, "mx") == {"brand-new-record": 2, "system/brand_new": 1}
    store.close()


def config_for(tmp_path: Path) -> object:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    text = f"agents:\n  - slug: web\n    workdir: {work}\n  - slug: api\n    workdir: {work}\n"
    return parse_config(text, tmp_path / "agents.yaml", {})


def test_status_json_and_doctor_show_the_counts(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    store = Store(tmp_path / "state.db")
    unknown_records.add(store, "web", Counter({"brand-new": 5}))

    class NoTmux:
        def snapshot(self) -> dict[str, object]:
            return {}

    rows = {r["slug"]: r for r in as_json(collect(config, store, NoTmux()))}  # type: ignore[arg-type]
    assert rows["web"]["unknown_records"] == {"brand-new": 5}
    assert rows["api"]["unknown_records"] == {}
    store.close()
    checks = check_unknown_records(config, tmp_path)  # type: ignore[arg-type]
    assert [(c.agent, c.ok, c.warning) for c in checks] == [("web", True, True)]
    assert checks[0].detail.startswith("5 unknown records: brand-new ×5")


def test_doctor_without_unknown_records_says_so(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    Store(tmp_path / "state.db").close()
    checks = check_unknown_records(config, tmp_path)  # type: ignore[arg-type]
    assert [(c.ok, c.warning) for c in checks] == [(True, False)]


@pytest.mark.parametrize(
    ("runtime", "printed", "warned"),
    [
        ("claude", "2.1.332 (Claude Code)", False),
        ("claude", "2.1.328 (Claude Code)", False),
        ("codex", "codex-cli 0.136.0", False),
        ("codex", "codex-cli 0.171.0", False),
        ("claude", "2.1.340 (Claude Code)", True),
        ("codex", "codex-cli 0.172.0", True),
        ("codex", "garbled", True),
    ],
)
def test_doctor_warns_about_a_cli_version_outside_the_tested_set(
    runtime: str, printed: str, warned: bool
) -> None:
    check = version_check("web", runtime, printed)
    assert check.ok and check.warning is warned and check.agent == "web"
    if warned:
        assert "is not a tested version (tested: " in check.detail
