"""The turn status line never delays or buries the answer: a short turn posts none, a long
turn's line is edited in place and deleted when the turn ends, a state that needs a person is
posted without waiting. Driven with a recording backend; conditions, never durations."""

from __future__ import annotations

import asyncio

from bridge.channel.turnstatus import TurnStatus
from bridge.chat.protocol import Outgoing, Posted
from bridge.lifecycle.activity import Activity


class Recorder:
    def __init__(self, *, can_delete: bool = True) -> None:
        self.calls: list[tuple[str, str]] = []
        self.can_delete = can_delete

    async def post(self, msg: Outgoing) -> Posted:
        self.calls.append(("post", msg.text))
        return Posted(f"ts{len(self.calls)}")

    async def update(self, channel: str, ref: str, text: str) -> None:
        self.calls.append(("update", text))

    async def delete(self, channel: str, ref: str) -> bool:
        if not self.can_delete:
            return False  # as the console answers: the caller edits instead
        self.calls.append(("delete", ref))
        return True


async def _settled(status: TurnStatus) -> None:
    for line in status.lines.values():
        if line.task is not None:
            await asyncio.wait_for(line.task, 30)


def _status(backend: Recorder, lazy: float) -> TurnStatus:
    return TurnStatus(
        backend,  # type: ignore[arg-type]
        lambda slug: "#c",
        lambda slug: None,
        min_interval=0,
        settle=0,
        lazy=lazy,
    )


def test_a_short_turn_posts_no_status_line() -> None:
    backend = Recorder()

    async def scenario() -> None:
        status = _status(backend, lazy=3600)
        status.changed("a", Activity.IDLE, Activity.WORKING)
        await asyncio.sleep(0)
        status.changed("a", Activity.WORKING, Activity.IDLE)
        await _settled(status)

    asyncio.run(scenario())
    assert backend.calls == []


def test_a_long_turns_line_is_deleted_at_the_end_never_posted_as_done() -> None:
    backend = Recorder()

    async def scenario() -> None:
        status = _status(backend, lazy=0)
        status.changed("a", Activity.IDLE, Activity.WORKING)
        await _settled(status)
        status.changed("a", Activity.WORKING, Activity.IDLE)
        await _settled(status)

    asyncio.run(scenario())
    assert [c[0] for c in backend.calls] == ["post", "delete"]
    assert "working" in backend.calls[0][1]


def test_without_delete_the_line_is_edited_to_done_not_posted() -> None:
    backend = Recorder(can_delete=False)

    async def scenario() -> None:
        status = _status(backend, lazy=0)
        status.changed("a", Activity.IDLE, Activity.WORKING)
        await _settled(status)
        status.changed("a", Activity.WORKING, Activity.IDLE)
        await _settled(status)

    asyncio.run(scenario())
    assert [c[0] for c in backend.calls] == ["post", "update"]
    assert "done" in backend.calls[1][1]


def test_waiting_for_a_person_is_posted_without_the_lazy_wait() -> None:
    backend = Recorder()

    async def scenario() -> None:
        status = _status(backend, lazy=3600)
        status.changed("a", Activity.IDLE, Activity.WORKING)
        await asyncio.sleep(0)
        status.changed("a", Activity.WORKING, Activity.WAITING_INPUT)
        await _settled(status)

    asyncio.run(scenario())
    assert [c[0] for c in backend.calls] == ["post"]
    assert "waiting for input" in backend.calls[0][1]
