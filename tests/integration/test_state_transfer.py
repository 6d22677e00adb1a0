"""``agentbridge state export`` / ``import`` (issue 25, item 5): every table arrives whole between
the engines, checked by digest; a tampered, truncated or foreign file imports nothing; a
non-empty target and a running runner are refused; and the real runner, moved from SQLite to
Postgres this way, resumes mirroring its real agent's transcript with no line lost or doubled."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.store.db import Store
from bridge.store.pg import PgStore
from bridge.store.transfer import TransferError, export, import_into, tables
from runtimes import agent_session_id
from tests.conftest import Fleet, wait_until
from tests.integration.test_mirror_faults import mirrored_lines
from tests.integration.test_retention import seed
from tests.integration.test_runner import wait_ready
from tests.pg import pg_cluster, pg_url

__all__ = ["pg_cluster", "pg_url"]

pytestmark = pytest.mark.postgres


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "state.db")
    yield store
    store.close()


@pytest.fixture
def pg(pg_url: str) -> Iterator[PgStore]:
    store = PgStore(pg_url)
    yield store
    store.close()


def filled(store: Store) -> Store:
    now = time.time()
    seed(store, now - 3, "a", n=40)
    seed(store, now, "b", n=3)
    store.upsert_agent("a1", "claude", "id-1", "hash")
    with store.tx() as db:  # text the engines sort differently, and a float's every digit
        db.execute(
            "INSERT INTO agent_meta (slug, key, value, updated_at) VALUES (?, ?, ?, ?)",
            ("a1", "Zeta é", "ünïcødé ✓ 'quoted' \\ %s ?", 1796698381.3238196),
        )
        db.execute(
            "INSERT INTO transcripts (slug, path, offset, inode, generation, updated_at)"
            " VALUES ('a1', '/t/x.jsonl', 123456789012, 9876543210, 2, ?)",
            (now,),
        )
    return store


def dump(store: Store) -> str:
    out = io.StringIO()
    export(store, out)
    return out.getvalue()


def test_sqlite_to_postgres_and_back_arrives_whole(
    sqlite: Store, pg: PgStore, tmp_path: Path
) -> None:
    text = dump(filled(sqlite))
    counts = import_into(pg, text.splitlines())
    assert counts == {t: int(sqlite.query(f"SELECT COUNT(*) FROM {t}")[0][0]) for t in tables()}
    assert counts["ledger"] > 0 and counts["prompt_queue"] > 0 and counts["transcripts"] == 1
    back = Store(tmp_path / "back.db")
    try:
        import_into(back, dump(pg).splitlines())
        assert dump(back).splitlines()[1:] == text.splitlines()[1:], "identical, header aside"
    finally:
        back.close()
    # Identity columns go on past the imported ids.
    with pg.tx() as db:
        new = db.execute("INSERT INTO launches (slug, started_at) VALUES ('a1', 1.0)").lastrowid
    top = max(int(r[0]) for r in sqlite.query("SELECT id FROM launches"))
    assert new is not None and new > top


def test_a_target_with_state_is_refused(sqlite: Store, pg: PgStore) -> None:
    text = dump(filled(sqlite))
    import_into(pg, text.splitlines())
    with pytest.raises(TransferError, match="already holds"):
        import_into(pg, text.splitlines())


@pytest.mark.parametrize("damage", ["row", "twice", "drop", "digest", "json", "format", "version"])
def test_a_damaged_export_imports_nothing(sqlite: Store, pg: PgStore, damage: str) -> None:
    lines = dump(filled(sqlite)).splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith('{"t":"ledger"'))
    if damage == "row":  # a status changed: only the digest can tell
        lines[row] = lines[row].replace('"posted"]', '"skipped"]', 1)
    elif damage == "twice":  # the target's primary key refuses it
        lines.insert(row, lines[row])
    elif damage == "drop":
        del lines[row]
    elif damage == "digest":
        lines = [line for line in lines if not line.startswith('{"digest": "transcripts"')]
    elif damage == "json":
        lines[row] = lines[row][:-5]
    elif damage == "format":
        lines[0] = json.dumps({"format": "something-else"})
    else:
        lines[0] = json.dumps({"format": "agentbridge-state/1", "schema_version": 999})
    with pytest.raises(TransferError):
        import_into(pg, lines)
    assert not pg.query("SELECT 1 FROM ledger LIMIT 1"), "nothing imported"
    assert not pg.query("SELECT 1 FROM prompt_queue LIMIT 1")


def _line(i: int) -> str:
    return json.dumps(
        {
            "type": "assistant",
            "uuid": f"00000000-0000-4000-8000-{i:012d}",
            "sessionId": "s",
            "message": {
                "id": f"msg_move_{i:05d}",
                "type": "message",
                "role": "assistant",
                "content": [{"type": "text", "text": f"fault line {i:05d}"}],
                "usage": {"input_tokens": 3, "output_tokens": 5},
            },
        }
    )


def test_the_runner_moved_from_sqlite_to_postgres_resumes_exactly_once(
    fleet: Fleet, pg_url: str
) -> None:
    fleet.slack_env["AGENTBRIDGE_HOST"] = "h"
    spec = fleet.agent("mv", "claude", host="h")
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, "mv", "claude")
    project = re.sub(r"[^A-Za-z0-9]", "-", str(Path(spec["workdir"]).resolve()))
    transcript = Path(
        spec["env"]["CLAUDE_CONFIG_DIR"], "projects", project, f"{agent_session_id('mv')}.jsonl"
    )
    transcript.parent.mkdir(parents=True, exist_ok=True)
    outbox = fleet.state_dir / "console.jsonl"
    with transcript.open("a") as fh:
        fh.writelines(_line(i) + "\n" for i in range(40))
    wait_until(lambda: len(set(mirrored_lines(outbox))) >= 40, 120, "the first 40 mirrored")
    running = fleet.cli("state", "export", str(fleet.root / "s.jsonl"), check=False)
    assert running.returncode == 1 and "stop it first" in running.stderr
    fleet.stop_runner()
    with transcript.open("a") as fh:  # the agent goes on while no runner runs
        fh.writelines(_line(i) + "\n" for i in range(40, 60))
    out = fleet.cli("state", "export", str(fleet.root / "s.jsonl"))
    assert "exported" in out.stdout
    fleet.slack_env["AGENTBRIDGE_DATABASE_URL"] = pg_url
    out = fleet.cli("state", "import", str(fleet.root / "s.jsonl"))
    assert "imported and checked" in out.stdout
    fleet.start_runner()
    with transcript.open("a") as fh:
        fh.writelines(_line(i) + "\n" for i in range(60, 80))
    wait_until(lambda: len(set(mirrored_lines(outbox))) >= 80, 120, "all 80 mirrored")
    numbers = mirrored_lines(outbox)
    assert numbers == list(range(80)), "lost, doubled or reordered across the move"
    assert "store postgres" in fleet.log_text()
