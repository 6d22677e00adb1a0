"""State databases made by earlier releases (tests/upgrades/, each written by that
release's own code, see make.py there) open in this one and converge: migrated to the latest
schema, nothing they held lost, and exactly-once holds on: the posted event stays posted, the
pending intent is still there to be settled, the queued prompt is still queued, the prompt a dead
runner was pasting is failed (never pasted twice), the transcript resumes at its offset. Each is
also carried into Postgres by ``state export``/``import``."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from bridge.store.db import Store
from bridge.store.ledger import Ledger
from bridge.store.pg import PgStore
from bridge.store.queue import PromptQueue
from bridge.store.schema import MIGRATIONS
from bridge.store.transfer import export, import_into
from tests.pg import pg_cluster, pg_url

__all__ = ["pg_cluster", "pg_url"]

FIXTURES = sorted((Path(__file__).parents[1] / "upgrades").glob("schema-*.db"))


def test_there_are_earlier_releases_to_open() -> None:
    versions = {int(p.name.split("-")[1]) for p in FIXTURES}
    assert len(versions) >= 5 and max(versions) < len(MIGRATIONS), versions


def converged(store: Store) -> None:
    assert store.schema_version() == len(MIGRATIONS)
    agent = store.agent("old")
    assert agent is not None and agent.runtime == "claude" and agent.agent_id == "agent-id-old"
    ledger = Ledger(store)
    assert ledger.is_posted("old", "evt-posted")
    assert [p.event_id for p in ledger.pending("old")] == ["evt-pending"]
    state = ledger.current_transcript("old")
    assert state is not None and state.path == "/work/old/t.jsonl"
    assert state.position.offset == 4096
    queue = PromptQueue(store)
    assert [i.text for i in queue.queued("old")] == ["queued before the upgrade"]
    failed = queue.recover()
    assert [i.text for i in failed] == ["mid-delivery at the upgrade"]
    assert queue.recover() == [], "failed once, never pasted again"
    # And it takes new work as a fresh database does.
    assert queue.enqueue("old", queue_kind(), "after the upgrade") is not None
    assert queue.enqueue("old", queue_kind(), "again", dedupe_key="slack:C0OLD:1.0") is None


def queue_kind() -> object:
    from bridge.store.queue import Kind

    return Kind.STEER


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_an_earlier_sqlite_state_converges(fixture: Path, tmp_path: Path) -> None:
    copy = tmp_path / "state.db"
    shutil.copy(fixture, copy)
    store = Store(copy)
    try:
        converged(store)
    finally:
        store.close()
    reopened = Store(copy)  # a second open changes nothing more
    try:
        assert reopened.schema_version() == len(MIGRATIONS)
    finally:
        reopened.close()


@pytest.mark.postgres
@pytest.mark.parametrize("fixture", FIXTURES[-2:], ids=lambda p: p.stem)
def test_an_earlier_sqlite_state_moves_to_postgres(
    fixture: Path, tmp_path: Path, pg_url: str
) -> None:
    copy = tmp_path / "state.db"
    shutil.copy(fixture, copy)
    source = Store(copy)
    out = io.StringIO()
    try:
        export(source, out)
    finally:
        source.close()
    target = PgStore(pg_url)
    try:
        import_into(target, out.getvalue().splitlines())
        converged(target)
    finally:
        target.close()
