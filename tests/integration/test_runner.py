"""The runner against real tmux and the real CLIs (fake model servers on loopback)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.conftest import Fleet, wait_until

pytestmark = pytest.mark.integration

#: Text on each CLI's screen once it is ready for input (see docs/real-cli-recipe.md).
READY = {"claude": "bypass permissions", "codex": "gpt-5"}


def wait_ready(fleet: Fleet, slug: str, runtime: str, timeout: float = 90) -> None:
    wait_until(lambda: fleet.status().get(slug, {}).get("alive"), timeout, f"{slug} alive")
    wait_until(
        lambda: READY[runtime] in fleet.capture(slug).lower(), timeout, f"{slug} ready screen"
    )


def claude_transcript(fleet: Fleet, slug: str, session_id: str) -> Path | None:
    home = Path(fleet.agents_by_slug(slug)["env"]["CLAUDE_CONFIG_DIR"])
    hits = list((home / "projects").glob(f"*/{session_id}.jsonl"))
    return hits[0] if hits else None


def transcript_text(fleet: Fleet, slug: str) -> str:
    spec = fleet.agents_by_slug(slug)
    env = spec["env"]
    if spec["runtime"] == "claude":
        files = list(Path(env["CLAUDE_CONFIG_DIR"], "projects").glob("*/*.jsonl"))
    else:
        files = list(Path(env["CODEX_HOME"], "sessions").glob("*/*/*/*.jsonl"))
    return "".join(f.read_text(errors="replace") for f in files)


def send_and_expect(fleet: Fleet, slug: str, text: str, expect: str, timeout: float = 90) -> None:
    out = fleet.cli("send", slug, text, "--config", str(fleet.config_path))
    assert "sent" in out.stdout
    wait_until(
        lambda: expect in transcript_text(fleet, slug),
        timeout,
        f"{expect!r} in {slug}'s transcript",
    )


@pytest.mark.parametrize(
    "runtime,version",
    [("claude", None), ("claude", "claude332"), ("codex", None), ("codex", "codex136")],
)
def test_agent_reaches_ready_prompt_and_send_makes_a_real_turn(
    fleet: Fleet, runtime: str, version: str | None
) -> None:
    slug = f"{runtime}-{version or 'cur'}"
    fleet.agent(slug, runtime, version)
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, slug, runtime)
    send_and_expect(fleet, slug, "hello from the test", "ack: hello from the test")
    server = fleet.anthropic if runtime == "claude" else fleet.openai
    assert "hello from the test" in server.prompts()
    send_and_expect(fleet, slug, "RUN: echo tool-$((6*7))", "tool-42")
    status = fleet.status()[slug]
    assert status["alive"] and status["pid"] and status["state"] in ("running", "starting")
    if runtime == "codex":  # the minted session id is discovered from the rollout
        wait_until(lambda: fleet.status()[slug]["session_id"], 30, "codex session id")
    # Golden check on what the real CLI wrote: each thing mirrored once, in order.
    sent = ":keyboard: *Sent with agentbridge send*\n:bust_in_silhouette: "
    expected = [
        sent + "hello from the test",
        "ack: hello from the test",
        sent + "RUN: echo tool-$((6*7))",
        "`$ echo tool-$((6*7))`",
        "```\ntool-42\n```",
        "ran: echo tool-$((6*7)) -&gt; tool-42",
    ]
    wait_until(lambda: len(mirrored(fleet, slug)) >= len(expected), 30, "mirrored turn")
    assert mirrored(fleet, slug) == expected


def mirrored(fleet: Fleet, slug: str) -> list[str]:
    outbox = fleet.state_dir / "console.jsonl"
    if not outbox.exists():
        return []
    records = [json.loads(line) for line in outbox.read_text().splitlines()]
    return [r["text"] for r in records if r["slug"] == slug]


def test_killed_cli_is_restarted_and_claude_resumes_its_session(fleet: Fleet) -> None:
    fleet.agent("kc", "claude")
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, "kc", "claude")
    send_and_expect(fleet, "kc", "remember the word kiwi", "ack: remember the word kiwi")
    before = fleet.status()["kc"]
    os.kill(before["pid"], signal.SIGKILL)
    # Recovery time itself is measured in bench/recovery.py (no timing assertions in tests).
    fleet.wait_relaunched("kc", before["pid"], what="restart")
    after = fleet.status()["kc"]
    assert after["session_id"] == before["session_id"]
    assert after["restarts"] >= 1
    wait_ready(fleet, "kc", "claude")
    send_and_expect(fleet, "kc", "after the restart", "ack: after the restart")
    # Same transcript file: both prompts are in it, and the relaunch used --resume.
    path = claude_transcript(fleet, "kc", before["session_id"])
    assert path is not None
    text = path.read_text()
    assert "remember the word kiwi" in text and "after the restart" in text
    assert "relaunched claude (resume" in fleet.log_text()


def test_codex_relaunch_resumes_the_recorded_session(fleet: Fleet) -> None:
    fleet.agent("cx", "codex")
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, "cx", "codex")
    send_and_expect(fleet, "cx", "first codex turn", "ack: first codex turn")
    sid = wait_until(lambda: fleet.status()["cx"]["session_id"], 30, "codex session id")
    os.kill(fleet.status()["cx"]["pid"], signal.SIGKILL)
    wait_until(lambda: f"relaunched codex (resume {sid})" in fleet.log_text(), 15, "resume")
    wait_ready(fleet, "cx", "codex")
    send_and_expect(fleet, "cx", "second codex turn", "ack: second codex turn")
    rollouts = list(Path(fleet.agents_by_slug("cx")["env"]["CODEX_HOME"]).rglob("rollout-*.jsonl"))
    assert len(rollouts) == 1, rollouts


def test_killed_session_and_surviving_shell_are_both_recovered(fleet: Fleet) -> None:
    fleet.agent("ks", "claude")
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, "ks", "claude")
    first = fleet.status()["ks"]["pid"]
    fleet.tmux("kill-session", "-t", "=ks")
    fleet.wait_relaunched("ks", first, what="session back")
    # The CLI dies but a shell survives in the pane: still detected as down.
    second = fleet.status()["ks"]["pid"]
    fleet.tmux("respawn-pane", "-k", "-t", "=ks:", "bash")
    fleet.wait_relaunched("ks", first, second, what="CLI relaunched over a surviving shell")


def test_removed_agent_is_stopped_and_broken_edit_keeps_last_config(fleet: Fleet) -> None:
    fleet.agent("keep", "claude")
    fleet.agent("drop", "codex")
    fleet.write_config()
    fleet.start_runner()
    wait_until(lambda: {"keep", "drop"} <= fleet.sessions(), 60, "both sessions")
    # A person's own session on the same server is never touched.
    fleet.tmux("new-session", "-d", "-s", "mine", "sleep 600")
    fleet.agents = [a for a in fleet.agents if a["slug"] != "drop"]
    fleet.write_config()
    wait_until(lambda: "drop" not in fleet.sessions(), 30, "removed agent stopped")
    assert {"keep", "mine"} <= fleet.sessions()
    # A broken edit: logged with the field, nothing changes.
    keep_pane = fleet.tmux("display-message", "-p", "-t", "=keep:", "#{pane_pid}")
    fleet.config_path.write_text(
        fleet.config_path.read_text().replace("runtime: claude", "runtime: gpt")
    )
    wait_until(
        lambda: "still running the last good config" in fleet.log_text(), 30, "broken edit reported"
    )
    assert "runtime" in fleet.log_text()
    assert fleet.tmux("display-message", "-p", "-t", "=keep:", "#{pane_pid}") == keep_pane
    assert "drop" not in fleet.sessions()


def test_runner_stop_leaves_agents_and_next_runner_adopts_them(fleet: Fleet) -> None:
    fleet.agent("stay", "claude")
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, "stay", "claude")
    pid = fleet.status()["stay"]["pid"]
    assert fleet.stop_runner() == 0
    assert fleet.status()["stay"]["pid"] == pid  # SIGTERM left the agent running
    fleet.start_runner()
    wait_until(lambda: "adopted running claude" in fleet.log_text(), 30, "adoption")
    assert fleet.status()["stay"]["pid"] == pid


def test_mirror_follows_claude_to_a_new_session_after_clear(fleet: Fleet) -> None:
    fleet.agent("clr", "claude")
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, "clr", "claude")
    send_and_expect(fleet, "clr", "before the clear", "ack: before the clear")
    first = fleet.status()["clr"]["session_id"]
    fleet.cli("send", "clr", "/clear", "--config", str(fleet.config_path))
    wait_until(lambda: fleet.status()["clr"]["session_id"] != first, 60, "new session id")
    wait_ready(fleet, "clr", "claude")
    fleet.cli("send", "clr", "after the clear", "--config", str(fleet.config_path))
    wait_until(
        lambda: "ack: after the clear" in mirrored(fleet, "clr"),
        60,
        "the new session's reply mirrored",
    )
    assert mirrored(fleet, "clr").count("ack: before the clear") == 1
