"""``status --wide`` piped, and in an 80-column terminal (issue 20.20).

Piped (not a terminal), rich assumes 80 columns and squeezed the fourteen columns into
one-letter headers; there is nothing to fit, so every header and value is printed in full. In a
real narrow terminal the columns fold into several tables, each led by the agent column, and no
header is ever cut.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from bridge.app.status import COLUMNS, NARROW, print_table
from tests.unit.test_status_cli import ROWS


def terminal(width: int, wide: bool) -> list[str]:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=True, color_system=None)
    print_table(ROWS, console, wide=wide)
    return [line.rstrip() for line in buffer.getvalue().splitlines()]


def tables(lines: list[str]) -> list[list[str]]:
    """The folded tables, split at the blank lines between them."""
    out: list[list[str]] = [[]]
    for line in lines:
        if line:
            out[-1].append(line)
        elif out[-1]:
            out.append([])
    return [t for t in out if t]


def test_wide_in_80_columns_folds_into_tables_with_whole_headers() -> None:
    lines = terminal(80, wide=True)
    assert all(len(line) <= 80 for line in lines), lines
    assert not any("…" in line for line in lines)
    seen: list[str] = []
    for table in tables(lines):
        header, _rule, *body = table
        names = header.split("  ")
        names = [n.strip() for n in names if n.strip()]
        assert names[0] == "agent", header
        seen += names[1:]
        starts = [header.index(n) for n in names]
        assert len(body) == len(ROWS), table
        for line, row in zip(body, ROWS, strict=True):
            for name, start in zip(names, starts, strict=True):
                value = COLUMNS[name](row)
                assert line[start:].startswith(value), f"{name}: {value!r} not in\n{line}"
    assert seen == list(COLUMNS)[1:], seen  # every column once, in order, under its full name


def test_narrow_status_in_80_columns_is_one_table() -> None:
    [table] = tables(terminal(80, wide=False))
    assert [n for n in table[0].split() if n] == list(NARROW)


def test_piped_status_wide_prints_every_value_in_full(tmp_path: Path) -> None:
    """The real command, its stdout a pipe, with COLUMNS=80 as a terminal would export."""
    work = tmp_path / "work"
    work.mkdir()
    config = tmp_path / "agents.yaml"
    config.write_text(f"agents:\n  - slug: reviewer-backend-api\n    workdir: {work}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AGENTBRIDGE_"))}
    env.update(COLUMNS="80", AGENTBRIDGE_TMUX_SOCKET=f"ab-width-{os.getpid()}")
    state = tmp_path / "state"
    command = [sys.executable, "-m", "bridge", "--state-dir", str(state), "status"]
    shown = subprocess.run(
        [*command, "--config", str(config), "--wide"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    header = next(line for line in lines if line.startswith("agent"))
    assert header.split() == [w for name in COLUMNS for w in name.split()], header
    [row] = [line for line in lines if line.startswith("reviewer-backend-api")]
    assert row.split()[:3] == ["reviewer-backend-api", "claude", "not"], row  # "not started"
    assert len(header) > 80
