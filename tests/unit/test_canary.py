"""Launch-flag canary recipes and their reading, on recorded CLI output (no real CLIs).

The strings are what the pinned claude 2.1.328 and codex 0.169.0 print (runtimes/canary.py
documents how they were obtained); the integration test runs the real binaries.
"""

from __future__ import annotations

import os
from pathlib import Path

from runtimes.canary import (
    Canary,
    claude_canary,
    codex_canary,
    judge,
    run_canary,
)
from tests.conftest import wait_until

CLAUDE_ACCEPTED = (
    "Error: Input must be provided either through stdin or as a prompt argument when using --print"
)


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_claude_canary_prints_instead_of_resuming_and_keeps_every_flag() -> None:
    plan = ("/bin/claude", "--resume", "sid-1", "--model", "m", "--settings", "{}", "--x")
    canary = claude_canary(plan)
    argv = list(canary.argv)
    assert argv[:3] == ["/bin/claude", "--print", "--no-session-persistence"]
    assert "--resume" not in argv and "sid-1" not in argv
    assert argv[3] == "--session-id" and len(argv[4]) == 36
    assert argv[5:] == ["--model", "m", "--settings", "{}", "--x"]
    assert canary.env["ANTHROPIC_BASE_URL"].startswith("http://127.0.0.1:")
    fresh = claude_canary(("/bin/claude", "--session-id", "abc", "--y"))
    assert fresh.argv[1:4] == ("--print", "--no-session-persistence", "--session-id")
    assert fresh.argv[4] != "abc" and fresh.argv[5:] == ("--y",)


def test_codex_canary_drops_resume_and_strict_config_and_lists_features() -> None:
    plan = ("/bin/codex", "resume", "sid", "--no-alt-screen", "-c", "a=1", "--strict-config")
    assert codex_canary(plan).argv == (
        "/bin/codex",
        "--no-alt-screen",
        "-c",
        "a=1",
        "features",
        "list",
    )
    assert codex_canary(("/bin/codex", "-m", "x")).argv == (
        "/bin/codex",
        "-m",
        "x",
        "features",
        "list",
    )


def test_judge_reads_clap_and_config_errors_without_boilerplate() -> None:
    canary = codex_canary(("/bin/codex",))
    clap = (
        "WARNING: proceeding, even though we could not create PATH aliases: nope\n"
        "error: unexpected argument '--definitely-not-a-flag' found\n\n"
        "  tip: to pass '--definitely-not-a-flag' as a value, use '-- --definitely-not-a-flag'\n\n"
        "Usage: codex [OPTIONS] [PROMPT]\n       codex [OPTIONS] <COMMAND> [ARGS]\n\n"
        "For more information, try '--help'.\n"
    )
    result = judge(canary, 2, "", clap)
    assert not result.ok
    assert result.detail == "exit 2: error: unexpected argument '--definitely-not-a-flag' found"
    config = (
        "Error: failed to load bootstrap configuration\n\nCaused by:\n"
        '    invalid type: string "{broken", expected a map\n    in `projects`\n    \n\n'
        "Stack backtrace:\n   0: <unknown>\n   1: <unknown>\n"
    )
    result = judge(canary, 1, "", config)
    assert "expected a map in `projects`" in result.detail and "unknown" not in result.detail
    assert judge(canary, 0, "feature  stable  true\n", "").ok


def test_judge_treats_claudes_no_prompt_error_as_accepted_and_keeps_warnings() -> None:
    canary = claude_canary(("/bin/claude",))
    warning = 'Claude Code doesn\'t recognize the model "foo", so it assumes a context window'
    result = judge(canary, 1, "", f"{warning}\n{CLAUDE_ACCEPTED}\n")
    assert result.ok and result.warnings == (warning,)
    rejected = judge(canary, 1, "", "error: unknown option '--nope'\n")
    assert not rejected.ok and "unknown option '--nope'" in rejected.detail
    assert judge(canary, 1, "", "").detail == "exit 1: no message"


def test_run_canary_kills_the_whole_group_on_timeout(tmp_path: Path) -> None:
    # A CLI that hangs and leaves a child holding its output pipe: unless the whole group is
    # killed, run_canary waits on the pipe for ten minutes (and the test times out).
    pids = tmp_path / "pids"
    hang = script(tmp_path / "hang", f"sleep 600 &\necho $! > {pids}\nsleep 600\n")
    result = run_canary(Canary(argv=(str(hang),)), dict(os.environ), tmp_path, timeout=0.5)
    assert not result.ok and "did not exit within 0.5 s" in result.detail
    child = int(pids.read_text())
    wait_until(lambda: not _alive(child), timeout=30, what="the hung CLI's child to be killed")
    missing = run_canary(Canary(argv=(str(tmp_path / "nope"),)), {}, tmp_path)
    assert not missing.ok and "cannot run" in missing.detail


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
