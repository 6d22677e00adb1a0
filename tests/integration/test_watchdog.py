"""Usage limits, stuck turns and crash loops against the real CLIs (console backend).

The Slack side of the same (posts, buttons) is in tests/e2e/test_watchdog_slack.py.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Fleet, wait_until
from tests.integration.test_runner import wait_ready

pytestmark = pytest.mark.integration


def posts(fleet: Fleet, slug: str, kind: str) -> list[str]:
    outbox = fleet.state_dir / "console.jsonl"
    if not outbox.exists():
        return []
    records = [json.loads(line) for line in outbox.read_text().splitlines() if line.strip()]
    return [
        r["text"]
        for r in records
        if r["slug"] == slug and str(r["event_id"]).startswith(f"note:{kind}:")
    ]


def limited_requests(server: Any) -> int:
    return sum(1 for r in server.requests if (r.reply or {}).get("status") == 429)


def test_claude_limit_waits_continues_and_waits_again_without_a_flood(fleet: Fleet) -> None:
    slug = "lim-claude"
    # Claude names no reset time, so the fallback wait applies: 45 s, then 90 s. With the
    # fake's retry-after Claude waits out a short limit itself (seen: up to ~50 s) and gives up
    # at once on a longer one (80 s and more): 150 s outlasts the first continue, not the second.
    watchdog = {"limit_fallback_minutes": 0.75, "limit_grace_seconds": 1}
    fleet.agent(slug, "claude", watchdog=watchdog)
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, slug, "claude")
    fleet.cli("send", slug, "a long job LIMIT:150")
    wait_until(lambda: posts(fleet, slug, "limit"), 90, "the limit post")
    status = fleet.status()[slug]
    assert status["activity"] == "limited" and status["limited_until"] is not None
    fleet.cli("send", slug, "held while limited")
    wait_until(lambda: posts(fleet, slug, "limit_again"), 90, "the second wait's note")
    wait_until(
        lambda: any("ack:" in str((r.reply or {}).get("text")) for r in fleet.anthropic.requests
                    if r.kind == "turn" and "LIMIT:150" in (r.prompt or "")),
        120,
        "the limited turn answered after the automatic continue",
    )  # fmt: skip
    # The held steer goes in right after the continue prompt (Claude may fold it into the
    # same request); it never went into the limited agent before the continue.
    wait_until(
        lambda: any("held while limited" in p for p in fleet.anthropic.prompts()), 90, "held steer"
    )
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 90, "idle at the end")
    assert len(posts(fleet, slug, "limit")) == 1
    assert len(posts(fleet, slug, "limit_again")) == 1
    assert fleet.status()[slug]["limited_until"] is None
    # Nothing was pasted into the limited agent: the held steer reached the model only after
    # the first continue prompt had.
    prompts = [r.prompt or "" for r in fleet.anthropic.requests if r.kind == "turn"]
    first_continue = next(i for i, p in enumerate(prompts) if "continue" in p)
    first_steer = next(i for i, p in enumerate(prompts) if "held while limited" in p)
    assert first_continue < first_steer


def test_codex_limit_reset_from_the_rollout_and_a_second_wait(fleet: Fleet) -> None:
    slug = "lim-codex"
    fleet.agent(slug, "codex", watchdog={"limit_grace_seconds": 1})
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, slug, "codex")
    fleet.cli("send", slug, "a codex job LIMIT:20")
    wait_until(lambda: posts(fleet, slug, "limit"), 90, "the limit post")
    assert "resets at" in posts(fleet, slug, "limit")[0]  # Codex names the reset
    status = fleet.status()[slug]
    assert status["activity"] == "limited" and status["limited_until"] is not None
    fleet.openai.limit(20)  # the continue prompt meets the limit again
    wait_until(lambda: posts(fleet, slug, "limit_again"), 90, "the second wait's note")
    wait_until(
        lambda: any(str((r.reply or {}).get("text", "")).startswith("ack: continue")
                    for r in fleet.openai.requests),
        120,
        "the continued turn answered",
    )  # fmt: skip
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 90, "idle at the end")
    assert len(posts(fleet, slug, "limit")) == 1
    assert len(posts(fleet, slug, "limit_again")) == 1
    assert limited_requests(fleet.openai) == 2


@pytest.mark.parametrize("runtime", ["claude", "codex"])
def test_stalled_stream_gives_one_stuck_alert_and_max_turn_interrupts(
    fleet: Fleet, runtime: str
) -> None:
    slug = f"stall-{runtime}"
    watchdog = {"stuck_after_minutes": 0.15, "max_turn_minutes": 0.5}
    fleet.agent(slug, runtime, watchdog=watchdog)
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, slug, runtime)
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 60, "idle")
    fleet.cli("send", slug, "hang here STALL:600")
    wait_until(lambda: posts(fleet, slug, "stuck"), 90, "the stuck alert")
    alert = posts(fleet, slug, "stuck")[0]
    assert "looks stuck" in alert and "```" in alert  # with the pane's last lines
    wait_until(lambda: posts(fleet, slug, "max_turn"), 90, "max_turn_minutes enforced")
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 60, "idle after the interrupt")
    assert len(posts(fleet, slug, "stuck")) == 1
    fleet.cli("send", slug, "after the stall")
    # The agent takes prompts again (Claude resends the interrupted prompt with the next one,
    # so the fake may stall that request too: what counts is that it reached the model).
    server = fleet.anthropic if runtime == "claude" else fleet.openai
    wait_until(
        lambda: any("after the stall" in (r.prompt or "") for r in server.requests),
        90,
        "the next prompt reaches the model",
    )


def test_crash_loop_is_posted_once_and_so_is_its_recovery(fleet: Fleet, tmp_path: Path) -> None:
    slug = "looper"
    spec = fleet.agent(slug, "claude")
    flag = tmp_path / "healthy"
    wrapper = tmp_path / "bin" / "claude"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        f'[ -e "{flag}" ] && exec "{spec["bin"]}" "$@"\n'
        'echo "fatal: cannot start (simulated)"; exit 3\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    spec["bin"] = str(wrapper)
    restart = {"max_failures": 2, "window_minutes": 5, "crash_loop_retry_seconds": 5}
    fleet.write_config(restart=restart)
    fleet.start_runner()
    wait_until(lambda: posts(fleet, slug, "crash_loop"), 90, "the crash-loop post")
    post = posts(fleet, slug, "crash_loop")[0]
    assert "crash-looping" in post
    flag.touch()
    wait_until(lambda: posts(fleet, slug, "crash_loop_over"), 120, "the recovery post")
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 60, "idle")
    assert len(posts(fleet, slug, "crash_loop")) == 1
    assert len(posts(fleet, slug, "crash_loop_over")) == 1
    assert os.path.exists(flag)
