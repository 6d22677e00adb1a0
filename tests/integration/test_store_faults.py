"""The real runner with its store failing at random (``AGENTBRIDGE_TEST_STORE_FAULTS``, see
:mod:`bridge.devtools.store_faults`), on both engines: a transcript's lines are mirrored exactly
once and in order, and Slack messages reach the agent's queue exactly once, read once by the
model behind the real CLI. (The routing test under the same faults, two hosts on Postgres, is
``tests/integration/test_routing.py``.)
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from runtimes import agent_session_id
from tests.conftest import Fleet, wait_until
from tests.integration.test_mirror_faults import WRITER, mirrored_lines
from tests.integration.test_runner import wait_ready
from tests.pg import pg_cluster, pg_url

__all__ = ["pg_cluster", "pg_url"]

pytestmark = pytest.mark.integration
ENGINES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SHARE = "0.05"


def _on(fleet: Fleet, engine: str, request: pytest.FixtureRequest, seed: int) -> dict[str, Any]:
    """Fault the runner's store; on Postgres, as host ``h`` of a shared store."""
    fleet.slack_env["AGENTBRIDGE_TEST_STORE_FAULTS"] = f"{SHARE}:{seed}"
    if engine != "postgres":
        return {}
    url = request.getfixturevalue("pg_url")
    fleet.slack_env["AGENTBRIDGE_DATABASE_URL"] = url
    fleet.slack_env["AGENTBRIDGE_HOST"] = "h"
    fleet.pg_url = url  # type: ignore[attr-defined]
    return {"host": "h"}


def _queued(fleet: Fleet, engine: str, slug: str) -> list[str]:
    query = "SELECT dedupe_key FROM prompt_queue WHERE slug = ?"
    if engine == "postgres":
        with psycopg.connect(fleet.pg_url, autocommit=True) as conn:  # type: ignore[attr-defined]
            rows = conn.execute(query.replace("?", "%s").encode(), (slug,)).fetchall()
    else:
        with sqlite3.connect(fleet.state_dir / "state.db", timeout=10) as conn:
            rows = conn.execute(query, (slug,)).fetchall()
    return [str(r[0]) for r in rows]


@pytest.mark.parametrize("engine", ENGINES)
def test_mirror_with_a_flaky_store_loses_and_duplicates_nothing(
    fleet: Fleet, engine: str, request: pytest.FixtureRequest
) -> None:
    extra = _on(fleet, engine, request, seed=11)
    spec = fleet.agent("fm", "claude", **extra)
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, "fm", "claude")
    project = re.sub(r"[^A-Za-z0-9]", "-", str(Path(spec["workdir"]).resolve()))
    transcript = Path(
        spec["env"]["CLAUDE_CONFIG_DIR"], "projects", project, f"{agent_session_id('fm')}.jsonl"
    )
    transcript.parent.mkdir(parents=True, exist_ok=True)
    total = 150
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(transcript), str(total), "0.01"])
    outbox = fleet.state_dir / "console.jsonl"
    try:
        wait_until(lambda: len(set(mirrored_lines(outbox))) >= total, 180, "every line mirrored")
    finally:
        writer.wait(timeout=120)
    numbers = mirrored_lines(outbox)
    assert len(numbers) == len(set(numbers)), f"{len(numbers) - len(set(numbers))} duplicated"
    assert sorted(set(range(total)) - set(numbers)) == [], "lost"
    assert numbers == sorted(numbers), "order not kept"
    assert "store calls fail" in fleet.log_text()
    assert "injected at" in fleet.log_text(), "no fault was injected"


@pytest.mark.parametrize("engine", ENGINES)
def test_inbound_with_a_flaky_store_queues_each_message_once(
    fleet: Fleet, slack: Any, engine: str, request: pytest.FixtureRequest
) -> None:
    alice = slack.add_user("alice", "Alice")
    channel = slack.add_channel("agent-fi", members=[alice])
    fleet.use_slack(slack)
    extra = _on(fleet, engine, request, seed=12)
    fleet.agent("fi", "claude", channel="#agent-fi", allowed_users=[alice], **extra)
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, "fi", "claude")
    wait_until(lambda: slack.hub.open_count() >= 1, 60, "the socket connection")
    total = 20
    keys = [
        f"slack:{channel}:{slack.post_as_user(alice, channel, f'flaky note {i}')}"
        for i in range(total)
    ]
    wait_until(lambda: set(_queued(fleet, engine, "fi")) >= set(keys), 180, "every note queued")
    got = _queued(fleet, engine, "fi")
    assert sorted(got) == sorted(keys), "lost or duplicated"
    notes = {f"flaky note {i}" for i in range(total)}

    def read() -> list[str]:
        prompts = [r.prompt or "" for r in fleet.anthropic.requests if r.kind == "turn"]
        return [m for p in prompts for m in re.findall(r"flaky note \d+", p)]

    wait_until(lambda: set(read()) >= notes, 180, "every note read by the agent")
    assert sorted(read()) == sorted(notes), "a note read twice"
    assert "injected at" in fleet.log_text(), "no fault was injected"
