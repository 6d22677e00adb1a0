"""SIGKILL the real runner at random instants while its agent's transcript grows: every line is
mirrored exactly once, in order.

The agent is a real Claude Code in tmux; a writer process appends assistant lines (the shape
Claude itself writes) to that agent's transcript much faster than a model would, so kills land
at every stage of the tail -> intent -> post -> commit cycle. The console backend's outbox file
is the channel history the test audits.
"""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runtimes import agent_session_id
from tests.conftest import Fleet, wait_until
from tests.integration.test_runner import wait_ready
from tests.pg import pg_cluster, pg_url

__all__ = ["pg_cluster", "pg_url"]

pytestmark = pytest.mark.integration

KILLS = 22
WRITER = textwrap.dedent(
    """
    import json, sys, time, uuid
    path, count, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    for i in range(count):
        line = {"type": "assistant", "uuid": str(uuid.uuid4()), "sessionId": "s",
                "message": {"id": f"msg_fault_{i:05d}", "type": "message", "role": "assistant",
                            "content": [{"type": "text", "text": f"fault line {i:05d}"}],
                            "usage": {"input_tokens": 3, "cache_creation_input_tokens": 0,
                                      "cache_read_input_tokens": 1000, "output_tokens": 5}}}
        with open(path, "a") as fh:
            fh.write(json.dumps(line) + "\\n")
        if i % 50 == 7:  # bookkeeping noise and a torn-then-completed line, as CLIs write
            with open(path, "a") as fh:
                fh.write('{"type": "last-prompt", "sessionId": "s"}\\n{"type": "mode",')
                fh.flush()
                time.sleep(delay)
                fh.write(' "mode": "normal"}\\n')
        time.sleep(delay)
    """
)


def mirrored_lines(outbox: Path) -> list[int]:
    if not outbox.exists():
        return []
    numbers = []
    for raw in outbox.read_text().splitlines():
        try:
            record = json.loads(raw)
        except ValueError:
            continue  # a torn last record (the runner was killed mid-write)
        match = re.fullmatch(r"fault line (\d+)", record.get("text", ""))
        if match:
            numbers.append(int(match.group(1)))
    return numbers


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_sigkill_at_random_points_loses_and_duplicates_nothing(
    fleet: Fleet, engine: str, request: pytest.FixtureRequest
) -> None:
    extra = {}
    if engine == "postgres":  # the same storm against the shared engine, as host `h`
        fleet.slack_env["AGENTBRIDGE_DATABASE_URL"] = request.getfixturevalue("pg_url")
        fleet.slack_env["AGENTBRIDGE_HOST"] = "h"
        extra = {"host": "h"}
    spec = fleet.agent("fk", "claude", **extra)
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, "fk", "claude")  # Claude refuses a --session-id whose file exists
    workdir = str(Path(spec["workdir"]).resolve())
    project = re.sub(r"[^A-Za-z0-9]", "-", workdir)
    transcript = Path(
        spec["env"]["CLAUDE_CONFIG_DIR"], "projects", project, f"{agent_session_id('fk')}.jsonl"
    )
    transcript.parent.mkdir(parents=True, exist_ok=True)
    total = 700
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(transcript), str(total), "0.02"])
    outbox = fleet.state_dir / "console.jsonl"
    rng = random.Random(20261122)
    try:
        for round_ in range(KILLS):
            wait_until(
                lambda r=round_: fleet.log_text().count("runner: started") == r + 1, 60, "runner up"
            )
            # Kill somewhere between "just started" and "well into delivering".
            seen = len(mirrored_lines(outbox))
            wait_until(
                lambda s=seen: len(mirrored_lines(outbox)) > s or writer.poll() is not None,
                60,
                "some progress before the kill",
                interval=rng.uniform(0.01, 0.3),
            )
            assert fleet.runner is not None
            fleet.runner.send_signal(signal.SIGKILL)
            fleet.runner.wait(timeout=30)
            fleet.runner = None
            fleet.start_runner()
    finally:
        writer.wait(timeout=120)
    wait_until(lambda: len(set(mirrored_lines(outbox))) >= total, 120, "every line mirrored")
    numbers = mirrored_lines(outbox)
    duplicates = len(numbers) - len(set(numbers))
    lost = sorted(set(range(total)) - set(numbers))
    assert duplicates == 0, f"{duplicates} duplicated"
    assert lost == [], f"{len(lost)} lost: {lost[:10]}"
    assert numbers == sorted(numbers), "order not kept"
    wait_until(lambda: fleet.log_text().count("runner: started") == KILLS + 1, 60, "last runner")
    assert fleet.status()["fk"]["bad_lines"] == 0
