"""``agentbridge doctor`` against the pinned real CLIs: the launch-flag canary is only worth
having if the real binaries accept the runner's exact flags and reject a wrong one by name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bridge.doctor.check import Check
from bridge.doctor.report import exit_code, render, run_checks
from runtimes import agent_session_id
from tests.conftest import Fleet

pytestmark = pytest.mark.integration


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under a work tree with its size and mtime, to prove the canary left it alone."""
    state = {}
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        state[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return state


def run(fleet: Fleet) -> list[Check]:
    fleet.write_config()
    return run_checks(fleet.config_path, fleet.state_dir, fleet.env)


def canaries(checks: list[Check]) -> dict[str | None, Check]:
    return {c.agent: c for c in checks if c.name == "canary"}


def test_real_clis_accept_the_launch_flags_and_a_rejected_flag_is_named(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # one table row per line, whatever the terminal
    fleet.agent("cl", "claude")
    fleet.agent("cx", "codex")
    before = {slug: tree_state(fleet.root / "work" / slug) for slug in ("cl", "cx")}
    checks = run(fleet)
    report = render(checks, as_json=False)
    assert exit_code(checks) == 0, report
    assert set(canaries(checks)) == {"cl", "cx"}, report
    assert {slug: tree_state(fleet.root / "work" / slug) for slug in ("cl", "cx")} == before

    fleet.agent("bad", "codex", args=["--definitely-not-a-flag"])
    checks = run(fleet)
    report = render(checks, as_json=False)
    assert exit_code(checks) != 0
    bad = canaries(checks)["bad"]
    assert not bad.ok
    assert "unexpected argument '--definitely-not-a-flag'" in bad.detail, report
    assert canaries(checks)["cl"].ok and canaries(checks)["cx"].ok, report
    line = next(ln for ln in report.splitlines() if "--definitely-not-a-flag" in ln)
    assert "FAIL" in line and "bad" in line, report


def test_codex_override_and_claude_flag_errors_are_reported(fleet: Fleet) -> None:
    fleet.agent("cx", "codex", args=["-c", "projects={broken"])
    fleet.agent("cl", "claude", args=["--permission-mode", "bogus"])
    found = canaries(run(fleet))
    assert not found["cx"].ok
    assert 'invalid type: string "{broken", expected a map in `projects`' in found["cx"].detail
    assert not found["cl"].ok
    assert "option '--permission-mode <mode>' argument 'bogus' is invalid" in found["cl"].detail


def test_claude_resume_is_checked_without_touching_the_session(fleet: Fleet) -> None:
    """A relaunch resumes the agent's transcript; the canary must not continue or lock it."""
    spec = fleet.agent("cl", "claude", model="not-a-known-model")
    projects = Path(spec["env"]["CLAUDE_CONFIG_DIR"]) / "projects" / "-somewhere"
    projects.mkdir(parents=True)
    transcript = projects / f"{agent_session_id('cl')}.jsonl"
    transcript.write_text("")
    before = transcript.stat().st_mtime_ns
    check = canaries(run(fleet))["cl"]
    assert check.ok, check
    assert 'recognize the model "not-a-known-model"' in check.detail  # a warning, not a failure
    assert transcript.stat().st_mtime_ns == before and transcript.read_text() == ""


@pytest.mark.skipif(os.geteuid() != 0, reason="Claude refuses the flag only as root")
def test_claude_as_root_without_is_sandbox_is_caught(fleet: Fleet) -> None:
    spec = fleet.agent("cl", "claude")
    del spec["env"]["IS_SANDBOX"]
    check = canaries(run(fleet))["cl"]
    assert not check.ok
    assert "--dangerously-skip-permissions cannot be used with root" in check.detail
