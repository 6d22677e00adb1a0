"""Running every doctor check and rendering the report (text or JSON) and exit code."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from bridge.doctor.access import check_access
from bridge.doctor.asks import check_asks
from bridge.doctor.basics import (
    check_binaries,
    check_canaries,
    check_config,
    check_state_dir,
    check_tmux,
)
from bridge.doctor.check import Check
from bridge.doctor.cluster import check_cluster
from bridge.doctor.hooks import check_hook_command, check_hooks_log
from bridge.doctor.records import check_unknown_records
from bridge.doctor.slack import check_slack


def run_checks(config_path: Path, state_dir: Path, environ: Mapping[str, str]) -> list[Check]:
    """Every check, in the order a person would fix things; a bad config skips only the checks
    that need it. ``environ`` is the runner's environment (agents inherit it)."""
    checks = [check_tmux(environ)]
    config, config_checks = check_config(config_path, environ)
    checks += config_checks
    checks += check_state_dir(state_dir)
    if config is not None:
        binary_checks, usable = check_binaries(config, environ)
        checks += binary_checks
        checks += check_canaries(usable, config, state_dir, environ)
        checks += check_asks(config, environ)
        checks += check_unknown_records(config, state_dir)
        checks += check_cluster(config, state_dir, environ)
    checks += check_hook_command(config, state_dir, environ)
    checks += check_hooks_log(state_dir)
    checks += check_slack(config, environ, state_dir)
    checks += check_access(config, environ, state_dir)
    return checks


def exit_code(checks: Iterable[Check]) -> int:
    """1 when anything failed, so scripts and CI can gate on ``agentbridge doctor``."""
    return 0 if all(c.ok for c in checks) else 1


def render(checks: list[Check], as_json: bool) -> str:
    """A plain-text table (no colour codes: the output is often piped or logged) or JSON."""
    if as_json:
        return json.dumps([dataclasses.asdict(c) for c in checks], indent=2)
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(show_header=True, header_style="bold", expand=False)
    for column in ("", "check", "agent", "detail"):
        table.add_column(column, overflow="fold")
    for c in checks:
        # Text, not markup: CLI messages contain brackets ("[possible values: ...]").
        table.add_row(*(Text(x) for x in (_mark(c), c.name, c.agent or "", c.detail)))
    failed = sum(not c.ok for c in checks)
    warned = sum(c.ok and c.warning for c in checks)
    buffer = io.StringIO()
    width = max(100, shutil.get_terminal_size((140, 24)).columns)
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    console.print(table)
    summary = (
        f"{len(checks)} checks, {failed} failed" if failed else f"{len(checks)} checks, all ok"
    )
    console.print(summary + (f", {warned} warning{'s' if warned != 1 else ''}" if warned else ""))
    return buffer.getvalue()


def _mark(check: Check) -> str:
    return "FAIL" if not check.ok else "warn" if check.warning else "ok"
