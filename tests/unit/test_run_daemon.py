"""A stop always ends the runner: a task that will not end after the stop is left behind (its
stack was logged by ``Daemon.run``), not waited for forever."""

from __future__ import annotations

import asyncio

from bridge.app.daemon import run_daemon


class StuckDaemon:
    """Returns from ``run`` while one of its tasks ignores every cancel (the shape of the rare
    stop that hung in the two-host test: the loop idle, one await never resolving)."""

    def __init__(self) -> None:
        self.cancels = 0

    async def run(self) -> int:
        async def stubborn() -> None:
            while True:
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    self.cancels += 1

        asyncio.get_running_loop().create_task(stubborn())
        await asyncio.sleep(0)
        return 0


def test_a_task_that_ignores_the_stop_does_not_keep_the_runner_alive() -> None:
    daemon = StuckDaemon()
    assert run_daemon(daemon) == 0  # type: ignore[arg-type]
    assert daemon.cancels == 1  # asked once more, then left behind
