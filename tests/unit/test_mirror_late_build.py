"""A rate-limited backend's message is built when its slot comes: lines written while the mirror
waited for the slot join it, and every event still goes out exactly once, in order."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from bridge.chat.protocol import Outgoing, Posted
from tests.unit.mirror_support import Harness, assistant


class GatedBackend:
    """Coalescing, with a ``reserve`` that waits until the test opens the gate."""

    name = "gated"
    coalesce = True
    live_status = False

    def __init__(self) -> None:
        self.posts: list[Outgoing] = []
        self.gate: asyncio.Event | None = None
        self.waiting: asyncio.Event | None = None
        self.reserved = 0

    async def reserve(self, channel: str) -> float:
        self.reserved += 1
        assert self.gate is not None and self.waiting is not None
        if not self.gate.is_set():
            self.waiting.set()
            await self.gate.wait()
            return 1.0
        return 0.0

    async def post(self, msg: Outgoing) -> Posted:
        self.posts.append(msg)
        return Posted(str(len(self.posts)))

    async def find_posted(self, channel: str, ids: object, thread: object = None) -> dict[str, str]:
        return {}


def test_lines_written_while_waiting_for_the_slot_join_the_message(tmp_path: Path) -> None:
    backend = GatedBackend()
    h = Harness(tmp_path, backend)
    h.append(assistant(0))

    async def scenario() -> None:
        backend.gate, backend.waiting = asyncio.Event(), asyncio.Event()
        pumping = asyncio.create_task(h.mirror.pump())
        await asyncio.wait_for(backend.waiting.wait(), 30)  # the first message waits for its slot
        h.append(assistant(1), assistant(2))
        backend.gate.set()
        await pumping
        h.append(assistant(3))
        await h.mirror.pump()  # a slot free at once: no read-on, just the new line

    asyncio.run(scenario())
    assert [m.text for m in backend.posts] == ["line 0\nline 1\nline 2", "line 3"]
    assert len(backend.posts[0].ids) == 3
    assert h.ledger.posted_count("mx") == 4
    assert h.ledger.pending("mx") == []
    # A restarted mirror on the same ledger posts nothing again.
    again = GatedBackend()
    h.open(again)

    async def rerun() -> None:
        again.gate, again.waiting = asyncio.Event(), asyncio.Event()
        again.gate.set()
        await h.mirror.pump()

    asyncio.run(rerun())
    assert again.posts == []
    h.close()


def test_a_catch_up_commits_each_message_with_the_next_ones_intent(tmp_path: Path) -> None:
    """Back-to-back messages (no waiting): every event posted once, nothing left pending, and
    the offset at the end of the file."""
    backend = GatedBackend()
    h = Harness(tmp_path, backend)
    h.append(*(assistant(i, "x" * 1500 + str(i)) for i in range(7)))

    async def scenario() -> None:
        backend.gate, backend.waiting = asyncio.Event(), asyncio.Event()
        backend.gate.set()
        await h.mirror.pump()

    asyncio.run(scenario())
    ids = [i for m in backend.posts for i in m.ids]
    assert len(ids) == len(set(ids)) == 7
    assert len(backend.posts) == 4  # two 1.5 KB parts per message under the 3.5 KB limit
    assert h.ledger.pending("mx") == []
    assert h.mirror.current is not None
    assert h.mirror.current.position.offset == h.path.stat().st_size
    h.close()


class FlakyBackend:
    """Unpaced, one message per event; the third post fails once; posts can be looked up."""

    name = "flaky"
    coalesce = False
    live_status = False

    def __init__(self) -> None:
        self.posts: list[Outgoing] = []
        self.calls = 0

    async def post(self, msg: Outgoing) -> Posted:
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("connection reset")
        self.posts.append(msg)
        return Posted(str(len(self.posts)))

    async def find_posted(self, channel: str, ids: object, thread: object = None) -> dict[str, str]:
        wanted = set(ids)  # type: ignore[call-overload]
        return {i: "x" for m in self.posts for i in m.ids if i in wanted}


def test_intents_recorded_ahead_are_settled_after_a_failure(tmp_path: Path) -> None:
    """An unpaced backend's catch-up records many intents in one transaction; a post failing
    half-way leaves the unposted ones pending, and the next pass settles them by look-up and
    posts each remaining event exactly once."""
    backend = FlakyBackend()
    h = Harness(tmp_path, backend)
    h.append(*(assistant(i) for i in range(8)))
    with contextlib.suppress(RuntimeError):
        h.pump()
    assert len(backend.posts) == 2 and h.ledger.pending("mx")
    h.mirror._retry_at = 0.0  # no back-off wait in a test
    h.pump()
    assert [m.text for m in backend.posts] == [f"line {i}" for i in range(8)]
    assert h.ledger.pending("mx") == []
    assert h.ledger.posted_count("mx") == 8
    h.close()
