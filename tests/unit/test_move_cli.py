"""``agentbridge move`` on a single box (SQLite): a clear error, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.app.cli import main


def test_move_on_sqlite_says_it_needs_a_shared_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AGENTBRIDGE_DATABASE_URL", raising=False)
    state = tmp_path / "state"
    code = main(["move", "a1", "--to", "b", "--state-dir", str(state), "--config", "none.yaml"])
    assert code == 2
    err = capsys.readouterr().err
    assert "agentbridge move:" in err and "shared store" in err
