"""Scheduled prompts (the 06:00 morning nudge), owned by the runner instead of external timers.

APScheduler 3 with a SQLAlchemy job store in the state dir: each schedule's next run time is on
disk, so a runner that was down at 06:00 and is back within the schedule's grace sends the
prompt once (misfire grace + coalescing) instead of silently skipping the day or sending it
twice. A firing only queues the prompt; the prompt queue delivers it when the agent is idle, so
a schedule that fires mid-turn or during a compaction waits for the turn boundary.

Owner: the event loop the scheduler was started on. APScheduler's asyncio executor runs a plain
function job in a worker thread, where the sink would set the deliverer's ``asyncio.Event`` and
touch loop-owned state from the wrong thread; :func:`fire` is therefore a coroutine function,
which the executor runs as a task on the loop itself, so the sink is only ever called there.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bridge.config.model import Config, ScheduleConfig

log = logging.getLogger("agentbridge.schedule")

Sink = Callable[[str, str, str], None]
_sink: Sink | None = None


async def fire(slug: str, key: str, prompt: str) -> None:
    """The job APScheduler runs, on its event loop (module-level so the persistent store can
    reference it; a coroutine so it never runs on a worker thread)."""
    if _sink is None:
        log.error("%s: schedule %s fired with no runner to take it", slug, key)
        return
    _sink(slug, key, prompt)


def schedule_key(slug: str, schedule: ScheduleConfig) -> str:
    raw = "\x00".join(
        [slug, schedule.cron, schedule.timezone, schedule.prompt, str(schedule.grace_minutes)]
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


class Scheduler:
    def __init__(self, db_path: Path, sink: Sink) -> None:
        global _sink
        _sink = sink
        self._jobs = SQLAlchemyJobStore(url=f"sqlite:///{db_path}")
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": self._jobs},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone="UTC",
        )

    @property
    def running(self) -> bool:
        return bool(self.scheduler.running)

    async def prepare(self) -> None:
        """Open the job store's database (its first connection and table check take about a
        tenth of a second) in a worker thread, before :meth:`start` runs on the loop: the
        scheduler itself then only makes small reads of a warm local SQLite file there."""
        await asyncio.to_thread(self._jobs.jobs_t.create, self._jobs.engine, True)

    def start(self, config: Config) -> None:
        """Start with the stored jobs paused until they match ``config``: a job removed from the
        config while the runner was down must not fire once on start-up."""
        self.scheduler.start(paused=True)
        self.sync(config)
        self.scheduler.resume()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def sync(self, config: Config) -> None:
        """Make the stored jobs match the config; untouched jobs keep their next run time."""
        wanted: dict[str, tuple[str, ScheduleConfig]] = {}
        for agent in config.agents:
            if not agent.enabled:
                continue
            for schedule in agent.schedules:
                wanted[f"{agent.slug}:{schedule_key(agent.slug, schedule)}"] = (
                    agent.slug,
                    schedule,
                )
        existing = {job.id for job in self.scheduler.get_jobs()}
        for job_id in existing - set(wanted):
            self.scheduler.remove_job(job_id)
            log.info("%s: schedule %s removed", job_id.split(":")[0], job_id)
        for job_id, (slug, schedule) in wanted.items():
            if job_id in existing:
                continue
            self.scheduler.add_job(
                fire,
                trigger=schedule.trigger(),
                args=[slug, job_id, schedule.prompt],
                id=job_id,
                name=f"{slug}: {schedule.cron} {schedule.timezone}",
                # At least a second: APScheduler reads None as "however late".
                misfire_grace_time=max(1, int(schedule.grace_minutes * 60)),
                coalesce=True,
                replace_existing=False,
            )
            log.info("%s: schedule '%s' (%s) added", slug, schedule.cron, schedule.timezone)

    def next_runs(self) -> dict[str, Any]:
        return {job.id: job.next_run_time for job in self.scheduler.get_jobs()}
