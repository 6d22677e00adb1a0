"""``agentbridge run``: one asyncio process that supervises, watches and mirrors.

SIGTERM and SIGINT stop the runner, never the agents (unless ``--stop-agents``): the fleet keeps
working while the runner is upgraded or restarted, and the next runner adopts it. One runner per
state dir, enforced with a lock file, because two would double-post every message.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import functools
import io
import logging
import os
import signal
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bridge.aio import TaskSet, watch_lag
from bridge.answers.pane import PaneFallback
from bridge.answers.service import Answers
from bridge.app.operations import Operations
from bridge.app.runner_files import AlreadyRunning, acquire_runner_lock, write_runner_info
from bridge.channel.chatbridge import ChatBridge
from bridge.chat.factory import make_backend
from bridge.chat.protocol import ChatBackend, Outgoing
from bridge.cluster.heartbeat import heartbeat
from bridge.cluster.moves import Moves
from bridge.cluster.placement import local_fleet, warn_unplaced
from bridge.config import access, paths
from bridge.config.lastgood import load_and_remember, load_at_start
from bridge.config.model import Config, ConfigError, default_channel
from bridge.config.placement import runner_host
from bridge.config.spawned import spawn_ids, spawned_dir
from bridge.config.watch import config_snapshot, watch_config
from bridge.devtools import store_faults
from bridge.fleet.launch import PRIVATE_ENV
from bridge.fleet.reconcile import Reconciler, runner_mark
from bridge.fleet.tmux import TmuxServer
from bridge.hooks.command import hook_command
from bridge.lifecycle.core import Lifecycle
from bridge.lifecycle.steer import lock_file_for
from bridge.mirror.fleet import Mirrors
from bridge.review.service import ReviewService
from bridge.store.db import Store
from bridge.store.engine import open_store
from runtimes import Runtime

log = logging.getLogger("agentbridge")


STOP_GRACE_S = 20.0
"""How long a stop may take before the runner dumps its threads' stacks and exits anyway."""

WORKER_THREADS = 32
"""Threads for ``asyncio.to_thread`` (every store call, tmux command and file read). Python's
default, cores + 4, is 6 on a small box: a database outage holds one thread per waiting store
call (for up to the pool's connect timeout), and tmux and files must not queue behind them."""


class Daemon:
    def __init__(self, config_path: Path, state_dir: Path, *, stop_agents: bool = False) -> None:
        self.config_path = config_path
        self.state_dir = state_dir
        self.stop_agents = stop_agents
        self.stop = asyncio.Event()
        self._background = TaskSet()
        self.failed = False
        self.snapshot: str | None = None

    async def run(self) -> int:
        spawned = spawned_dir(self.state_dir)
        self.snapshot = await asyncio.to_thread(config_snapshot, self.config_path, spawned)
        try:
            loaded = await asyncio.to_thread(load_at_start, self.config_path, self.state_dir)
        except ConfigError as err:  # and no last good copy: exit 2, which systemd leaves be
            for line in err.errors:
                print(line, file=sys.stderr)
            return 2
        config = loaded.config
        for line in loaded.problems:  # stderr: the journal, in red
            log.error("config: %s", line)
        if loaded.problems:
            self.snapshot = ""  # not agents.yaml's: the watch loads whatever it becomes
        try:
            lock = acquire_runner_lock(self.state_dir)
        except AlreadyRunning as err:
            print(f"agentbridge: {err}", file=sys.stderr)
            return 3
        # The runner's Slack credentials and database URL must never reach an agent's
        # environment, including through the tmux server's global environment when this process
        # starts the server (libpq's PG* variables are kept from agents by ``agent_env``).
        secrets = {k: os.environ[k] for k in (*PRIVATE_ENV, "SLACK_API_URL") if k in os.environ}
        for key in PRIVATE_ENV:
            os.environ.pop(key, None)
        try:
            return await self._serve(config, secrets)
        finally:
            lock.close()

    async def _serve(self, config: Config, secrets: dict[str, str]) -> int:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(
            ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="agentbridge")
        )
        socket = paths.tmux_socket(config.tmux_socket)
        store = await asyncio.to_thread(
            functools.partial(open_store, self.state_dir, config.store, environ=secrets)
        )
        faults = store_faults.from_env(store, os.environ)
        host = runner_host()
        shared = store.shared
        moves = Moves(store, host)  # every host's agents, as placed: channels, routing, notes
        fleet = await moves.start(config)
        config = local_fleet(fleet, host, shared=shared)  # this host's: supervised here
        warn_unplaced(fleet, shared=shared)
        tmux = TmuxServer(socket)
        kind = "slack" if access.slack_configured(secrets) else "console"  # as make_backend
        write_runner_info(self.state_dir, self.config_path, socket, kind)
        backend: ChatBackend = make_backend(self.state_dir, secrets, config.slack_pace.model_dump())
        await backend.start()
        router = None
        if shared:
            from bridge.cluster.router import RoutedBackend
            from bridge.store.pg import PgStore

            assert isinstance(store, PgStore)
            router = RoutedBackend(backend, store, host, fleet)
            backend = router
        channels = fleet.channels()
        share = getattr(backend, "share_among", None)  # Slack: 1/N of its rate limits

        def note(slug: str, text: str) -> None:
            """A short status note in the agent's channel (at most once; not ledgered)."""
            msg = Outgoing(
                slug, channels.get(slug) or default_channel(slug), text, f"note:{uuid.uuid4()}"
            )

            def send() -> None:
                thread = lifecycle.router.pinned(slug)  # a reviewer's notes go in its thread
                out = (
                    msg
                    if thread is None
                    else Outgoing(msg.slug, msg.channel, text, msg.event_id, thread)
                )
                self._background.spawn(backend.post(out))

            loop.call_soon_threadsafe(send)

        lifecycle = Lifecycle(
            config, store, tmux, self.state_dir, paths.locks_dir(self.state_dir), note
        )
        if shared:  # only this host's agents' prompts are delivered (and recovered) here
            lifecycle.queue.scope = frozenset(a.slug for a in config.agents)
        reconciler = Reconciler(
            config,
            store,
            tmux,
            mark=runner_mark(self.state_dir),
            hook_command=hook_command(),
            hook_socket=lifecycle.hooks.path,
            tokens=lifecycle.tokens,
            listener=LoopListener(lifecycle, loop),
        )
        mirrors = Mirrors(store, backend, listeners=[lifecycle.on_event], router=lifecycle.router)
        mirrors.sync(config)
        lifecycle.on_session.append(lambda slug: mirrors.wake(slug, refresh=True))
        reviews = ReviewService(
            config,
            self.config_path,
            self.state_dir,
            store,
            backend,
            lifecycle.router,
            lambda slug: row.state if (row := store.agent(slug)) else None,
            fleet=fleet,
        )

        def task_done(slug: str) -> None:
            loop.run_in_executor(None, reconciler.stop, slug, "done")
            loop.call_soon_threadsafe(reviews.finished, slug)

        lifecycle.on_task_done = task_done
        chat = ChatBridge(fleet, backend, lifecycle, reconciler, self.state_dir / "inbox")
        chat.commands.verbs["review"] = reviews.command
        if router is not None:  # a review runs on its template's host
            router.command_owners["review"] = reviews.owner
        await chat.start()
        await asyncio.to_thread(self._respawned, store, reconciler)
        current = [fleet]
        answers = Answers(config, store, backend, lifecycle.tracker, lifecycle.router.thread_of)
        answers.install()  # after the chat side: it chains to whatever took actions before
        if router is not None:  # a form's answer reaches the host whose agent asked
            router.form_owner = answers.form_owner
        lifecycle.hooks.blocking = answers.hook
        lifecycle.on_confirmed.append(answers.confirmed)
        lifecycle.deliverer.on_delivered.append(answers.pasted)
        lifecycle.tracker.listeners.append(answers.activity)
        locks = paths.locks_dir(self.state_dir)
        by_keys = PaneFallback(answers, lambda slug: tmux.pane(slug, lock_file_for(locks, slug)))
        lifecycle.tracker.listeners.append(by_keys.activity)
        lifecycle.on_events.append(by_keys.on_event)
        if chat.status is not None:
            tracker = lifecycle.tracker
            chat.status.waiting_of = lambda s: (
                tracker.get(s).waiting_for,
                tracker.get(s).waiting_link,
            )

        ops = Operations(config, store, tmux, lifecycle.tracker, mirrors, backend)

        def reload(new: Config) -> None:
            new = moves.effective(new)
            channels.update(new.channels())  # a removed agent's last notes still find it
            current[0] = new
            local = local_fleet(new, host, shared=shared)
            if shared:
                lifecycle.queue.scope = frozenset(a.slug for a in local.agents)
                self._background.spawn(
                    asyncio.to_thread(moves.hosts.place, host, [a.slug for a in local.agents])
                )
            if router is not None:
                router.update_config(new)
            reconciler.update_config(local)
            ops.config = local
            mirrors.sync(local)
            lifecycle.update_config(local)
            chat.update_config(new)
            reviews.update_config(local, new)
            loop.run_in_executor(None, self._respawned, store, reconciler)
            answers.update_config(new)

        moves.attach(reload, reconciler, mirrors, lifecycle.queue)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        log.info(
            "runner: started with %d agents (config %s, state %s, tmux %s, host %s, store %s)",
            len(config.agents),
            self.config_path,
            self.state_dir,
            socket or "default server",
            host,
            store.describe(),
        )
        if faults is not None:  # armed once started: a failing start only ends the runner
            faults.enabled = True
        tasks = [
            asyncio.create_task(lifecycle.run(self.stop), name="lifecycle"),
            asyncio.create_task(reconciler.run(self.stop), name="reconcile"),
            asyncio.create_task(mirrors.run(self.stop), name="mirror"),
            asyncio.create_task(chat.run(self.stop), name="chat"),
            asyncio.create_task(reviews.run(self.stop), name="reviews"),
            asyncio.create_task(
                heartbeat(store, host, _version(), lambda: current[0], note, self.stop, share),
                name="heartbeat",
            ),
            asyncio.create_task(watch_lag(self.stop), name="loop-lag"),
            asyncio.create_task(moves.run(self.stop), name="moves"),
            asyncio.create_task(
                watch_config(
                    self.config_path,
                    reload,
                    self.stop,
                    load=lambda: load_and_remember(self.config_path, self.state_dir),
                    extra_dir=spawned_dir(self.state_dir),
                    initial=self.snapshot,
                ),
                name="watch",
            ),
        ]
        tasks.append(asyncio.create_task(ops.run(self.stop, list(tasks)), name="ops"))
        for task in tasks:
            task.add_done_callback(self._task_ended)
        ops.ready()
        await self.stop.wait()
        log.info("runner: stopping%s", " and stopping agents" if self.stop_agents else "")
        # A stop must end the process: should any step hang, every thread's stack goes to
        # stderr (the cause, for a bug report) and the process exits; the agents run on.
        faulthandler.dump_traceback_later(STOP_GRACE_S, exit=True)
        await by_keys.close()
        await answers.close()  # held hooks are let go, not abandoned: they reconnect later
        for task in tasks:
            task.cancel()
        for task in await _unfinished(tasks, STOP_GRACE_S / 2):
            log.warning("runner: %s did not stop; its stack:\n%s", task.get_name(), _stack(task))
        if self.stop_agents:
            await asyncio.to_thread(reconciler.stop_all)
        # The signals' last records (an activity, a confirm) are written before the store
        # closes; with the database away they are given up after a few seconds.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(lifecycle.later.idle(), STOP_GRACE_S / 4)
        await backend.close()
        store.close()
        log.info("runner: stopped%s", "" if self.stop_agents else "; agents left running")
        return 1 if self.failed else 0

    def _respawned(self, store: Store, reconciler: Reconciler) -> None:
        """A spawned agent written again (``spawn`` with the same name) is a fresh run: its
        earlier run, done or still going, no longer holds it (worker thread)."""
        for slug, spawn_id in spawn_ids(self.state_dir).items():
            rows = store.query(
                "SELECT value FROM agent_meta WHERE slug = ? AND key = 'spawn_id'", (slug,)
            )
            seen = rows[0][0] if rows else None
            if seen == spawn_id:
                continue
            with store.tx() as db:
                db.execute(
                    "INSERT INTO agent_meta (slug, key, value, updated_at)"
                    " VALUES (?, 'spawn_id', ?, ?) ON CONFLICT(slug, key)"
                    " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    (slug, spawn_id, time.time()),
                )
            row = store.agent(slug)
            if row is not None and (seen is not None or row.state == "done"):
                log.info("%s: spawned again; starting a fresh run", slug)
                reconciler.restart(slug)

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """A core loop must never end on its own: if one does, stop loudly (and non-zero, so
        systemd restarts the runner) instead of running on half-blind."""
        if self.stop.is_set() or task.cancelled():
            return
        self.failed = True
        error = task.exception()
        log.error(
            "runner: %s ended unexpectedly: %r; stopping", task.get_name(), error, exc_info=error
        )
        self.stop.set()


def run_daemon(daemon: Daemon) -> int:
    """``asyncio.run(daemon.run())``, except that a task still stuck after the stop (already
    reported with its stack by :meth:`Daemon.run`) gets one more cancel and two seconds, then
    is left behind instead of waited for forever: SIGTERM must end the runner. The stop's
    faulthandler deadline stays armed until the loop is closed."""
    # ``kill -USR1 <pid>``: every thread's stack to the log, for a runner that looks hung.
    with contextlib.suppress(AttributeError, ValueError, io.UnsupportedOperation):
        faulthandler.register(signal.SIGUSR1, all_threads=True)  # needs a real stderr
    loop = asyncio.new_event_loop()
    try:
        code = loop.run_until_complete(daemon.run())
        leftover = asyncio.all_tasks(loop)
        for task in leftover:
            task.cancel()
        if leftover:
            loop.run_until_complete(asyncio.wait(leftover, timeout=2.0))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        return code
    finally:
        loop.close()
        faulthandler.cancel_dump_traceback_later()


async def _unfinished(tasks: list[asyncio.Task[None]], within: float) -> set[asyncio.Task[None]]:
    """Wait (at most ``within`` seconds) for cancelled ``tasks`` to end; those that did not. A
    task's own error was reported when it ended (``_task_ended``); here it is only collected."""
    done, pending = await asyncio.wait(tasks, timeout=within)
    for task in done:
        if not task.cancelled():
            task.exception()
    return pending


def _stack(task: asyncio.Task[None]) -> str:
    out = io.StringIO()
    task.print_stack(file=out)
    return out.getvalue()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agentbridge")
    except PackageNotFoundError:
        return "dev"


class LoopListener:
    """Hands the reconciler's (worker-thread) news to the lifecycle on the event loop."""

    def __init__(self, lifecycle: Lifecycle, loop: asyncio.AbstractEventLoop) -> None:
        self.lifecycle = lifecycle
        self.loop = loop

    def launched(self, slug: str, runtime: Runtime) -> None:
        self.loop.call_soon_threadsafe(self.lifecycle.launched, slug, runtime)

    def adopted(self, slug: str) -> None:
        self.loop.call_soon_threadsafe(self.lifecycle.adopted, slug)

    def down(self, slug: str, crash_loop: bool) -> None:
        self.loop.call_soon_threadsafe(self.lifecycle.down, slug, crash_loop)
