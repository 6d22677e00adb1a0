"""Issue 11 item 14 against a live runner: spawning a name again is a fresh run, and a spawned
agent whose work dir was removed is skipped without blocking edits, restarts or ``status``."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import Fleet, wait_until

pytestmark = pytest.mark.integration


def spawn(fleet: Fleet, name: str, workdir: str, prompt: str) -> None:
    args = ["spawn", "reviewer", "--name", name, "--set", f"workdir={workdir}"]
    out = fleet.cli(*args, "--prompt", prompt, "--config", str(fleet.config_path))
    assert "spawned" in out.stdout


def test_respawn_runs_again_and_a_removed_workdir_never_blocks_the_fleet(fleet: Fleet) -> None:
    fleet.agent("reviewer", "codex", enabled=False)
    fleet.write_config()
    fleet.start_runner()
    wait_until(lambda: "runner: started" in fleet.log_text(), 30, "runner")
    tree = fleet.root / "pr-7-tree"
    tree.mkdir()
    spawn(fleet, "pr-7", str(tree), "review pull request 7")
    wait_until(lambda: "review pull request 7" in fleet.openai.prompts(), 90, "first task")
    wait_until(lambda: fleet.status().get("pr-7", {}).get("state") == "done", 60, "done")
    # The same name again: "a fresh review", not held down by the first run.
    spawn(fleet, "pr-7", str(tree), "review pull request 7 again")
    wait_until(lambda: "review pull request 7 again" in fleet.openai.prompts(), 90, "second task")
    wait_until(lambda: fleet.status().get("pr-7", {}).get("state") == "done", 60, "done again")
    assert fleet.openai.prompts().count("review pull request 7") == 1
    # The documented cleanup, half done: the worktree goes, the spawned file stays.
    shutil.rmtree(tree)
    fleet.agent("later", "codex")
    fleet.write_config()  # an edit is taken, not refused because of pr-7
    wait_until(lambda: fleet.status().get("later", {}).get("alive"), 90, "the added agent")
    assert "spawned agent skipped" in fleet.log_text() and "pr-7.yaml" in fleet.log_text()
    validate = fleet.cli("validate", "--config", str(fleet.config_path))
    assert validate.returncode == 0 and "pr-7.yaml" in validate.stdout
    # A restarted runner runs (no exit 2), and so does status.
    assert fleet.stop_runner() == 0
    fleet.start_runner()
    wait_until(lambda: fleet.log_text().count("runner: started") == 2, 30, "restarted")
    assert fleet.runner is not None and fleet.runner.poll() is None
    assert set(fleet.status()) >= {"reviewer", "later"}
