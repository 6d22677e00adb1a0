"""Agents sharing a channel (several reviewers of one template, or two agents configured with
the same ``channel``): a reply goes to the agent owning its thread, a top-level message to the
one agent still running there, and anything else is refused with a note, never guessed. A real
SQLite store; the chat backend is the recording stand-in of the access tests."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bridge.store.db import Store
from bridge.store.recipient import recipient
from tests.unit.test_access import ALICE, MALLORY, Backend, inbound, make_config, msg, queued

CHANNEL = "C0000000001"  # "#one" in the stand-in backend


def shared(tmp_path: Path) -> tuple[object, Backend]:
    config = make_config(
        tmp_path,
        allowed_users=[ALICE],
        agents=[
            {"slug": "rev-1", "channel": "#one"},
            {"slug": "rev-2", "channel": "#one"},
            {"slug": "solo", "channel": "#two"},
        ],
    )
    return config, Backend()


def own_turn_thread(store: Store, slug: str, thread: str) -> None:
    with store.tx() as db:
        db.execute(
            "INSERT INTO turn_routes (slug, event_id, path, generation, line_offset, thread,"
            " created_at) VALUES (?, ?, 'p', 0, 0, ?, ?)",
            (slug, f"e-{thread}", thread, time.time()),
        )


def test_replies_follow_the_thread_owner_and_top_level_messages_are_not_guessed(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "state.db")
    config, backend = shared(tmp_path)
    ib = inbound(config, store, backend, tmp_path)  # type: ignore[arg-type]
    own_turn_thread(store, "rev-2", "50.000001")
    with store.tx() as db:  # rev-1 posted a message (the ledger) that people reply under
        db.execute(
            "INSERT INTO ledger (slug, event_id, status, chat_ref, created_at)"
            " VALUES ('rev-1', 'x', 'posted', '60.000001', 1)"
        )

    asyncio.run(ib.handle(msg(ALICE, "for two", ref="51.1", thread="50.000001")))
    asyncio.run(ib.handle(msg(ALICE, "for one", ref="61.1", thread="60.000001")))
    # a reply under a person's message that was queued for rev-2 goes to rev-2 as well
    asyncio.run(ib.handle(msg(ALICE, "and more", ref="52.1", thread="51.1")))
    assert queued(store) == [("rev-2", "for two"), ("rev-1", "for one"), ("rev-2", "and more")]

    # Top level, or in a thread nobody owns: refused in the thread with what to do instead.
    assert asyncio.run(ib.handle(msg(ALICE, "who gets this?", ref="70.1"))) is None
    assert asyncio.run(ib.handle(msg(ALICE, "or this?", ref="71.1", thread="9.9"))) is None
    assert len(queued(store)) == 3
    notes = [p.text for p in backend.posts]
    assert len(notes) == 2 and all("`rev-1`, `rev-2`" in n and "/agent send" in n for n in notes)
    assert [p.thread for p in backend.posts] == ["70.1", "9.9"]
    asyncio.run(ib.handle(msg(ALICE, "who gets this?", ref="70.1")))  # redelivered
    assert len(backend.posts) == 2  # told once

    # Someone allowed on none of them gets the usual private refusal, not the channel note.
    asyncio.run(ib.handle(msg(MALLORY, "hi", ref="72.1")))
    assert len(backend.posts) == 2 and backend.notified[-1][1] == MALLORY

    # The other channel has one agent: everything there is for it, threads or not.
    asyncio.run(ib.handle(msg(ALICE, "solo top", channel="C0000000002", ref="80.1")))
    assert queued(store)[-1] == ("solo", "solo top")
    store.close()


def test_a_finished_reviewer_no_longer_takes_the_channels_messages(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    config, backend = shared(tmp_path)
    ids = dict(backend.channels)
    for slug in ("rev-1", "rev-2"):
        store.upsert_agent(slug, "claude", f"id-{slug}", "h")
    assert recipient(config, store, CHANNEL, None, ids).agent is None  # two running: unclear

    store.set_state("rev-1", "done")
    found = recipient(config, store, CHANNEL, None, ids)
    assert found.agent is not None and found.agent.slug == "rev-2"

    store.set_state("rev-2", "done")
    gone = recipient(config, store, CHANNEL, None, ids)
    assert gone.agent is None and gone.why and "finished" in gone.why
    # Its own thread does not reach a finished reviewer either: the sender is told.
    own_turn_thread(store, "rev-1", "40.000001")
    late = recipient(config, store, CHANNEL, "40.000001", ids)
    assert late.agent is None and late.why and "`rev-1` has finished" in late.why
    # nor does the channel of a finished agent that has it to itself
    store.upsert_agent("solo", "claude", "id-solo", "h")
    store.set_state("solo", "done")
    alone = recipient(config, store, "C0000000002", None, ids)
    assert alone.agent is None and alone.why and "`solo` has finished" in alone.why
    store.close()


def test_a_redelivered_message_is_not_queued_again_when_its_recipient_changed(
    tmp_path: Path,
) -> None:
    """rev-1 takes a top-level message (the only one running), then finishes before Slack
    delivers the same event again: the second delivery must not go to rev-2 as a new prompt."""
    store = Store(tmp_path / "state.db")
    config, backend = shared(tmp_path)
    ib = inbound(config, store, backend, tmp_path)  # type: ignore[arg-type]
    for slug in ("rev-1", "rev-2"):
        store.upsert_agent(slug, "claude", f"id-{slug}", "h")
    store.set_state("rev-2", "done")
    asyncio.run(ib.handle(msg(ALICE, "once only", ref="90.1")))
    store.set_state("rev-2", "running")
    store.set_state("rev-1", "done")
    asyncio.run(ib.handle(msg(ALICE, "once only", ref="90.1")))  # the same event again
    assert queued(store) == [("rev-1", "once only")]
    store.close()
