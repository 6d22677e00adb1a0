"""Agent lifecycle against the real CLIs: hooks, activity, queue, schedules, compaction."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Fleet, wait_until
from tests.integration.test_runner import wait_ready

pytestmark = pytest.mark.integration


def activity(fleet: Fleet, slug: str) -> str:
    return str(fleet.status().get(slug, {}).get("activity"))


def notes(fleet: Fleet, slug: str) -> list[str]:
    outbox = fleet.state_dir / "console.jsonl"
    if not outbox.exists():
        return []
    records = [json.loads(line) for line in outbox.read_text().splitlines() if line.strip()]
    return [r["text"] for r in records if r["slug"] == slug and r["event_id"].startswith("note:")]


def pane_env(fleet: Fleet, slug: str) -> dict[str, str]:
    out = fleet.tmux("show-environment", "-t", f"={slug}:")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def run_hook(env: dict[str, str], event: str, payload: dict[str, object]) -> None:
    subprocess.run(
        [sys.executable, "-m", "bridge", "hook", event],
        input=json.dumps(payload),
        text=True,
        env={**os.environ, **env},
        check=True,
        timeout=30,
    )


@pytest.mark.parametrize("runtime", ["claude", "codex"])
def test_hooks_drive_activity(fleet: Fleet, runtime: str) -> None:
    slug = f"act-{runtime}"
    fleet.agent(slug, runtime)
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, slug, runtime)
    wait_until(lambda: activity(fleet, slug) == "idle", 60, "idle")
    model = fleet.anthropic if runtime == "claude" else fleet.openai
    model.hold()
    fleet.cli("send", slug, "a held turn", "--config", str(fleet.config_path))
    wait_until(lambda: activity(fleet, slug) == "working", 60, "working")
    model.release()
    wait_until(lambda: activity(fleet, slug) == "idle", 60, "idle after the turn")
    log = fleet.log_text()
    assert f"{slug}: hooks reporting" in log
    assert f"{slug}: idle -> working" in log and f"{slug}: working -> idle" in log
    assert not (fleet.state_dir / "hooks.log").exists()
    queue = json.loads(fleet.cli("status", "--json").stdout)[0]
    assert queue["queued"] == 0


def test_broken_hook_pipeline_shows_no_signal_once(fleet: Fleet) -> None:
    spec = fleet.agent("quiet", "claude", enabled=False)
    fleet.write_config(signal_grace_seconds=6)
    fleet.start_runner()
    wait_until(lambda: (fleet.state_dir / "hooks.sock").exists(), 30, "hook socket")
    (fleet.state_dir / "hooks.sock").unlink()  # break the pipeline on purpose
    spec["enabled"] = True
    fleet.write_config(signal_grace_seconds=6)
    wait_until(lambda: activity(fleet, "quiet") == "no_signal", 60, "no_signal within the grace")
    wait_until(lambda: (fleet.state_dir / "hooks.log").exists(), 30, "hook failures logged")
    assert "FileNotFoundError" in (fleet.state_dir / "hooks.log").read_text()
    wait_until(lambda: notes(fleet, "quiet"), 30, "channel note")
    assert len([n for n in notes(fleet, "quiet") if "No signal" in n]) == 1


def test_killed_while_waiting_input_is_exited_then_restarted(fleet: Fleet) -> None:
    fleet.agent("perm", "claude")
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, "perm", "claude")
    wait_until(lambda: activity(fleet, "perm") == "idle", 60, "idle")
    # What Claude sends when it stops for a permission answer (the runner's own hook relay).
    run_hook(
        pane_env(fleet, "perm"),
        "Notification",
        {
            "hook_event_name": "Notification",
            "notification_type": "permission_prompt",
            "message": "Claude needs your permission to use Bash",
        },
    )
    wait_until(lambda: activity(fleet, "perm") == "waiting_input", 30, "waiting_input")
    pid = fleet.status()["perm"]["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: "perm: waiting_input -> exited" in fleet.log_text(), 30, "exited wins")
    fleet.wait_relaunched("perm", pid, timeout=30, what="restart")
    wait_until(lambda: activity(fleet, "perm") == "idle", 60, "idle again")


def test_runner_restart_keeps_hooks_and_refuses_forged_tokens(fleet: Fleet) -> None:
    fleet.agent("keep", "claude")
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, "keep", "claude")
    assert fleet.stop_runner() == 0
    fleet.start_runner()
    wait_until(lambda: fleet.log_text().count("runner: started") == 2, 30, "second runner")
    fleet.cli("send", "keep", "after the runner restart", "--config", str(fleet.config_path))
    wait_until(lambda: "after the runner restart" in fleet.anthropic.prompts(), 60, "prompt")
    second = fleet.log_text().split("runner: started")[-1]
    wait_until(
        lambda: "keep: working -> idle" in fleet.log_text().split("runner: started")[-1],
        60,
        "hooks of the running agent accepted by the new runner",
    )
    assert "rejected" not in second
    forged = pane_env(fleet, "keep") | {"AGENTBRIDGE_HOOK_TOKEN": "forged-token"}
    run_hook(forged, "Stop", {"hook_event_name": "Stop"})
    wait_until(
        lambda: "keep: rejected a Stop hook with an unknown token" in fleet.log_text(),
        30,
        "forged token refused",
    )
    assert "rejected: unknown token" in (fleet.state_dir / "hooks.log").read_text()


def test_schedules_wait_for_turn_end_and_compaction_and_survive_a_restart(fleet: Fleet) -> None:
    busy = fleet.agent("busy", "claude")
    comp = fleet.agent("comp", "claude")
    fleet.write_config()
    fleet.start_runner()
    for slug in ("busy", "comp"):
        wait_ready(fleet, slug, "claude")
        wait_until(lambda s=slug: activity(fleet, s) == "idle", 60, f"{slug} idle")
    fleet.cli("send", "comp", "something to compact", "--config", str(fleet.config_path))
    wait_until(lambda: "something to compact" in fleet.anthropic.prompts(), 60, "warm-up turn")
    wait_until(lambda: activity(fleet, "comp") == "idle", 60, "comp idle")
    fleet.anthropic.hold(compaction=True)
    fleet.cli("send", "busy", "a long turn", "--config", str(fleet.config_path))
    fleet.cli("send", "comp", "/compact", "--config", str(fleet.config_path))
    wait_until(lambda: activity(fleet, "busy") == "working", 60, "busy mid-turn")
    wait_until(lambda: activity(fleet, "comp") == "compacting", 60, "comp compacting")
    # Schedules added now fire at the next minute boundary, while both agents are busy.
    busy["schedules"] = [{"cron": "* * * * *", "prompt": "scheduled ping"}]
    comp["schedules"] = [{"cron": "* * * * *", "prompt": "scheduled after compaction"}]
    fleet.write_config()
    wait_until(
        lambda: fleet.log_text().count("scheduled prompt queued") >= 2,
        90,
        "both schedules fired (next minute boundary)",
    )
    # No more firings from here on, then a runner restart between enqueue and delivery.
    busy.pop("schedules")
    comp.pop("schedules")
    fleet.write_config()
    wait_until(lambda: fleet.log_text().count("removed") >= 2, 30, "schedules removed")
    assert fleet.stop_runner() == 0
    fleet.start_runner()
    wait_until(lambda: fleet.log_text().count("runner: started") == 2, 30, "second runner")
    assert "scheduled ping" not in fleet.anthropic.prompts()
    fleet.anthropic.release()
    wait_until(
        lambda: {"scheduled ping", "scheduled after compaction"} <= set(fleet.anthropic.prompts()),
        90,
        "scheduled prompts delivered",
    )
    wait_until(
        lambda: activity(fleet, "busy") == "idle" and activity(fleet, "comp") == "idle",
        60,
        "both idle",
    )
    prompts = fleet.anthropic.prompts()
    assert prompts.count("scheduled ping") == 1
    assert prompts.count("scheduled after compaction") == 1
    assert prompts.index("a long turn") < prompts.index("scheduled ping")
    kinds = [(r.kind, r.prompt) for r in fleet.anthropic.requests]
    compact_at = next(i for i, (k, _) in enumerate(kinds) if k == "compact")
    ping_at = next(i for i, (_, p) in enumerate(kinds) if p == "scheduled after compaction")
    assert compact_at < ping_at


def test_compaction_guard_nudges_then_compacts(fleet: Fleet) -> None:
    fleet.agent("big", "claude")
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, "big", "claude")
    fleet.cli("send", "big", "USAGE: 520000 first", "--config", str(fleet.config_path))
    wait_until(
        lambda: any(
            "wrap up" in p.lower() or "context window" in p.lower()
            for p in fleet.anthropic.prompts()
        ),
        90,
        "soft nudge at the model",
    )
    wait_until(lambda: activity(fleet, "big") == "idle", 60, "idle after the nudge")
    fleet.cli("send", "big", "USAGE: 760000 second", "--config", str(fleet.config_path))
    wait_until(
        lambda: any(r.kind == "compact" for r in fleet.anthropic.requests), 90, "/compact ran"
    )
    home = Path(fleet.agents_by_slug("big")["env"]["CLAUDE_CONFIG_DIR"])
    wait_until(
        lambda: any("compact_boundary" in f.read_text() for f in home.glob("projects/*/*.jsonl")),
        60,
        "compact_boundary",
    )
    wait_until(lambda: any("Context compacted" in n for n in notes(fleet, "big")), 60, "note")
    texts = notes(fleet, "big")
    assert any("soft limit" in n for n in texts) and any("hard limit" in n for n in texts)
    prompts = fleet.anthropic.prompts()
    nudge = next(i for i, p in enumerate(prompts) if "context window" in p.lower())
    assert prompts.index("USAGE: 520000 first") < nudge < prompts.index("USAGE: 760000 second")


def test_spawned_ephemeral_reviewer_runs_its_task_and_is_stopped(fleet: Fleet) -> None:
    fleet.agent("reviewer", "codex", enabled=False)
    fleet.write_config()
    fleet.start_runner()
    wait_until(lambda: "runner: started" in fleet.log_text(), 30, "runner")
    worktree = fleet.root / "pr-7-worktree"
    worktree.mkdir()
    out = fleet.cli(
        "spawn",
        "reviewer",
        "--name",
        "pr-7",
        "--set",
        f"workdir={worktree}",
        "--prompt",
        "review pull request 7",
        "--config",
        str(fleet.config_path),
    )
    assert "spawned" in out.stdout
    wait_until(lambda: "review pull request 7" in fleet.openai.prompts(), 90, "task at the model")
    wait_until(lambda: fleet.status().get("pr-7", {}).get("state") == "done", 60, "stopped")
    assert not fleet.status()["pr-7"]["alive"]
    assert "pr-7" not in fleet.sessions()
    assert any("Task finished" in n for n in notes(fleet, "pr-7"))
    assert fleet.openai.prompts().count("review pull request 7") == 1
