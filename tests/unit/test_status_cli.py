"""``agentbridge status`` and the command line a newcomer meets first: the table at 80
columns, the runner note, the demo pointer, a missing config, ``run``'s default config."""

from __future__ import annotations

import fcntl
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from bridge.app import runner_files
from bridge.app.cli import main
from bridge.app.status import COLUMNS, NARROW, AgentStatus, print_table


def status(slug: str, **changes: object) -> AgentStatus:
    base: dict[str, object] = dict(
        slug=slug,
        runtime="claude",
        alive=True,
        pid=1234567,
        session_id="0f4d7a0e-3a55-4c3e-9d8e-1a2b3c4d5e6f",
        restarts=12,
        uptime_s=3723.0,
        state="running",
        enabled=True,
        detail="",
        mirrored=12345,
        bad_lines=3,
        activity="waiting_input",
        context_tokens=745_000,
        queued=7,
        unknown_records={"brand-new": 2},
    )
    base.update(changes)
    return AgentStatus(**base)  # type: ignore[arg-type]


ROWS = [
    status("demo-claude"),
    status("demo-codex", runtime="codex", activity="crash_loop", alive=False, pid=None),
    status("reviewer-backend-api", activity="compacting", context_tokens=None),
]


def render(rows: list[AgentStatus], width: int, wide: bool = False) -> list[str]:
    buffer = io.StringIO()
    print_table(rows, Console(file=buffer, width=width, color_system=None), wide=wide)
    return [line.rstrip() for line in buffer.getvalue().splitlines() if line.strip()]


def cells(row: AgentStatus, names: tuple[str, ...]) -> list[str]:
    return [COLUMNS[name](row) for name in names]


def test_status_reads_at_80_columns_with_one_header_over_each_value() -> None:
    lines = render(ROWS, 80)
    assert all(len(line) <= 80 for line in lines), lines
    assert not any("…" in line for line in lines), "\n".join(lines)
    header = lines[0]
    starts = [header.index(name) for name in NARROW]
    assert starts == sorted(starts), header
    body = [line for line in lines[1:] if not set(line) <= {"─", " "}]
    assert len(body) == len(ROWS)
    for line, row in zip(body, ROWS, strict=True):
        for name, start, value in zip(NARROW, starts, cells(row, NARROW), strict=True):
            assert line[start:].startswith(value), f"{name!r}: {value!r} not under it in\n{line}"


def test_status_wide_shows_every_column_under_its_header() -> None:
    lines = render(ROWS[:1], 200, wide=True)
    header = lines[0]
    names = tuple(COLUMNS)
    starts = [header.index(name) for name in names]
    assert starts == sorted(starts)
    row = lines[-1]
    for name, start, value in zip(names, starts, cells(ROWS[0], names), strict=True):
        assert row[start:].startswith(value), f"{name!r}: {value!r} not under it in\n{row}"
    assert {"pid", "session", "mirrored", "bad lines", "unknown", "state"} <= set(names)


def test_a_slug_too_long_for_the_column_wraps_instead_of_being_cut() -> None:
    lines = render([status("x" * 60)], 80)
    assert not any("…" in line for line in lines)
    assert "".join(line.split()[0] for line in lines[1:] if line.startswith("x")) == "x" * 60


# -- the runner note -------------------------------------------------------------------------------


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def held_lock() -> Iterator[list[object]]:
    handles: list[object] = []
    yield handles
    for handle in handles:
        handle.close()  # type: ignore[attr-defined]


def hold_runner_lock(state: Path, handles: list[object]) -> None:
    """What a running runner does: an exclusive flock on runner.lock (this process holds it)."""
    handles.append(runner_files.acquire_runner_lock(state))


def test_runner_note_says_no_runner_and_names_a_stale_runner_json(state: Path) -> None:
    assert runner_files.runner_note(state).startswith(f"no runner is running for {state}")
    pid = dead_pid()
    (state / "runner.json").write_text(json.dumps({"pid": pid, "config": "/x/agents.yaml"}))
    assert f"stale runner.json from pid {pid}" in runner_files.runner_note(state)


def test_runner_note_with_a_live_runner(state: Path, held_lock: list[object]) -> None:
    hold_runner_lock(state, held_lock)
    runner_files.write_runner_info(state, state / "agents.yaml", None)
    assert runner_files.runner_note(state).startswith(f"runner: pid {os.getpid()}")


def test_status_without_runner_or_config_says_both(
    state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (state / "runner.json").write_text(json.dumps({"pid": 4_000_000}))
    with pytest.raises(SystemExit) as exit:
        main(["--state-dir", str(state), "status"])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert "stale runner.json from pid 4000000" in err
    assert "agents.yaml: no such config file" in err
    assert "empty" not in err


# -- the demo pointer ----------------------------------------------------------------------------


def test_plain_commands_follow_the_pointer_to_a_running_demo(
    tmp_path: Path, held_lock: list[object]
) -> None:
    home, demo = tmp_path / "home", tmp_path / "home" / "demo"
    demo.mkdir(parents=True)
    assert runner_files.follow_demo(home) == home  # no pointer
    assert runner_files.write_demo_pointer(home, home) is None  # the demo runs in home itself
    runner_files.write_demo_pointer(home, demo)
    assert runner_files.follow_demo(home) == home  # the demo's runner is not up
    hold_runner_lock(demo, held_lock)
    assert runner_files.follow_demo(home) == demo
    runner_files.clear_demo_pointer(home)
    assert not (home / runner_files.DEMO_POINTER).exists()
    assert runner_files.follow_demo(home) == home


def test_status_from_the_checkout_finds_the_running_demo(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    held_lock: list[object],
) -> None:
    home, demo = tmp_path / "home", tmp_path / "home" / "demo"
    work = demo / "work"
    work.mkdir(parents=True)
    config = demo / "agents.yaml"
    config.write_text(f"agents:\n  - slug: demo-claude\n    workdir: {work}\n")
    hold_runner_lock(demo, held_lock)
    runner_files.write_runner_info(demo, config, "ab-unused-socket")
    runner_files.write_demo_pointer(home, demo)
    monkeypatch.setenv("AGENTBRIDGE_HOME", str(home))
    monkeypatch.delenv("AGENTBRIDGE_TMUX_SOCKET", raising=False)
    monkeypatch.chdir(tmp_path)  # no agents.yaml here
    assert main(["status", "--json"]) == 0
    out = capsys.readouterr()
    assert [a["slug"] for a in json.loads(out.out)] == ["demo-claude"]
    assert f"runner: pid {os.getpid()}, state dir {demo}" in out.err
    # --state-dir is taken as given, never redirected.
    with pytest.raises(SystemExit):
        main(["--state-dir", str(home), "status"])


# -- missing config, run's default -----------------------------------------------------------------


@pytest.mark.parametrize("command", [["status"], ["send", "x", "hi"], ["attach", "x"], ["run"]])
def test_a_missing_config_is_reported_as_missing(
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit:
        main(["--state-dir", str(tmp_path / "state"), *command])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert "agents.yaml: no such config file" in err and "empty" not in err


def test_validate_reports_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--config", str(tmp_path / "nope.yaml")]) == 1
    assert capsys.readouterr().out.strip() == f"{tmp_path / 'nope.yaml'}: no such config file"


def test_run_without_config_uses_agents_yaml_in_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTBRIDGE_CONFIG", raising=False)
    (tmp_path / "agents.yaml").write_text("agents:\n  - slug: BAD SLUG\n    workdir: .\n")
    assert main(["--state-dir", str(tmp_path / "state"), "run"]) == 2
    assert "agents.yaml" in capsys.readouterr().err
    assert not (tmp_path / "state" / "runner.lock").exists()  # stopped at the config


def test_held_lock_fixture_is_a_real_flock(state: Path, held_lock: list[object]) -> None:
    hold_runner_lock(state, held_lock)
    with (state / "runner.lock").open("a+") as other, pytest.raises(BlockingIOError):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert runner_files.runner_alive(state)
