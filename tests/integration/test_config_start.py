"""A runner started while agents.yaml cannot be loaded (issue 20 item 16): the problem in one
line, no traceback; with a last good copy in the state dir, the fleet runs on it until the file
is fixed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import Fleet, wait_until
from tests.integration.test_runner import wait_ready

pytestmark = pytest.mark.integration

BROKEN = b"agents:\n  - slug: \xff\n"


def console_texts(fleet: Fleet) -> list[str]:
    outbox = fleet.state_dir / "console.jsonl"
    if not outbox.exists():
        return []
    return [json.loads(line)["text"] for line in outbox.read_text().splitlines() if line.strip()]


def test_a_first_start_on_a_broken_file_exits_2_with_one_line_and_no_traceback(
    fleet: Fleet,
) -> None:
    fleet.config_path.write_bytes(BROKEN)
    done = subprocess.run(
        [sys.executable, "-m", "bridge", "run", "--config", str(fleet.config_path)],
        env=fleet.env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=fleet.root,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    expected = f"{fleet.config_path}: not UTF-8 text (byte 18, line 2, column 11)"
    assert done.stderr.strip() == expected
    fleet.config_path.unlink()
    fleet.config_path.mkdir()  # a directory in its place: the same, no "is not a file" exit
    done = subprocess.run(
        [sys.executable, "-m", "bridge", "run", "--config", str(fleet.config_path)],
        env=fleet.env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=fleet.root,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"{fleet.config_path}: cannot read: is a directory, not a file"


def test_a_restart_on_a_broken_file_runs_the_last_good_config_until_it_is_fixed(
    fleet: Fleet,
) -> None:
    slug = "lastgood"
    fleet.agent(slug, "claude")
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, slug, "claude")
    assert (fleet.state_dir / "config-last-good.yaml").is_file()
    assert fleet.stop_runner() == 0
    fleet.config_path.write_bytes(BROKEN)  # saved while no runner was up (say, before a reboot)
    fleet.start_runner()
    wait_until(
        lambda: "running on the last good config" in fleet.log_text(), 60, "the loud fallback"
    )
    log = fleet.log_text()
    assert "Traceback" not in log
    assert f"{fleet.config_path}: not UTF-8 text (byte 18" in log
    # The fleet is served on the copy: a turn typed straight into the pane is mirrored.
    fleet.tmux("send-keys", "-t", f"={slug}:", "-l", "typed in the pane")
    fleet.tmux("send-keys", "-t", f"={slug}:", "Enter")
    wait_until(
        lambda: any("ack: typed in the pane" in t for t in console_texts(fleet)),
        90,
        "the pane's turn mirrored by the runner on the last good config",
    )
    assert fleet.runner is not None and fleet.runner.poll() is None
    # A fixed file is loaded as usual (and becomes the new last good copy).
    fleet.agents_by_slug(slug)["env"]["FIXED"] = "1"
    fleet.write_config()
    wait_until(lambda: "config: reloaded" in fleet.log_text(), 60, "the fixed file loaded")
    fleet.cli("send", slug, "after the fix")
    wait_until(lambda: "after the fix" in fleet.anthropic.prompts(), 90, "steering works again")
    assert "FIXED" in (fleet.state_dir / "config-last-good.yaml").read_text()
