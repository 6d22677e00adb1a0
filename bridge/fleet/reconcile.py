"""Keep the fleet described by the config running in tmux, continuously.

Every pass (about once a second) takes one ``list-panes -a`` snapshot and, per agent, decides:
adopt what is already running (a runner restart never relaunches a live agent), relaunch what
died (the session is gone, the pane is dead, or the pane survived but the CLI inside it did
not), and stop sessions this runner created for agents that were removed or disabled.

Relaunches back off exponentially after the first (which is immediate, so one crash costs
seconds); ``max_failures`` exits within ``window_minutes`` mark the agent ``crash_loop``, after
which it is retried only every ``crash_loop_retry_seconds``. Launches are staggered so a boot
does not start every CLI (and its auth refresh) in the same second.

Ownership: passes run in a worker thread (``asyncio.to_thread``) and, like ``restart`` and
``stop``, hold ``_lock``; everything the reconciler keeps (``config``, ``tracks``) belongs to
whoever holds it. ``update_config`` (called on the event loop by the config watch) only hands
the new config over; the next holder of the lock takes it, so a pass never sees two configs and
the loop never waits for a pass. Listeners are told through their own thread-safe hand-off
(the daemon's ``call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from bridge.aio import wait_event
from bridge.config.model import AgentConfig, Config
from bridge.fleet import liveness
from bridge.fleet.launch import launch_context
from bridge.fleet.tmux import PaneState, TmuxServer
from bridge.store.db import Store
from bridge.store.retry import in_thread_retrying
from runtimes import LaunchContext, Runtime, agent_session_id, get_runtime

log = logging.getLogger("agentbridge.reconcile")


#: How often a live agent's self-minted session id is looked for until found (the SessionStart
#: hook usually reports it first; this is the fallback scan).
DISCOVERY_INTERVAL_S = 5.0


def runner_mark(state_dir: Path) -> str:
    return "ab-" + hashlib.sha256(str(state_dir).encode()).hexdigest()[:10]


@dataclass
class AgentTrack:
    """What the reconciler remembers about one agent between passes (not persisted)."""

    next_attempt: float = 0.0
    seen: bool = False
    spec: str | None = None
    """The spec hash last written to the store (written again only when it changes)."""
    discovered_at: float = 0.0
    spec_warned: str | None = None


class FleetListener(Protocol):
    """Who wants to know about launches, adoptions and deaths (the lifecycle)."""

    def launched(self, slug: str, runtime: Runtime) -> None: ...

    def adopted(self, slug: str) -> None: ...

    def down(self, slug: str, crash_loop: bool) -> None: ...


class HookWiring(Protocol):
    """Issues the per-launch hook token (the hook server's token book)."""

    def issue(self, slug: str) -> str: ...


@dataclass(frozen=True, slots=True)
class Action:
    slug: str
    kind: str  # launched | relaunched | adopted | stopped | crash_loop | waiting
    detail: str = ""


class Reconciler:
    def __init__(
        self,
        config: Config,
        store: Store,
        tmux: TmuxServer,
        *,
        mark: str,
        environ: Mapping[str, str] | None = None,
        hook_command: str | None = None,
        hook_socket: Path | None = None,
        tokens: HookWiring | None = None,
        listener: FleetListener | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self.tmux = tmux
        self.mark = mark
        self.environ = dict(os.environ if environ is None else environ)
        self.hook_command = hook_command
        self.hook_socket = hook_socket
        self.tokens = tokens
        self.listener = listener
        self.clock = clock
        self.tracks: dict[str, AgentTrack] = {}
        self._lock = threading.Lock()
        self._handover = threading.Lock()
        self._pending: Config | None = None
        self.next_launch_allowed = 0.0

    def update_config(self, config: Config) -> None:
        """Hand over a new config from any thread; it takes effect at the next pass."""
        with self._handover:
            self._pending = config

    def _take_config(self) -> None:
        """Adopt a handed-over config; only ever called with ``_lock`` held."""
        with self._handover:
            if self._pending is not None:
                self.config, self._pending = self._pending, None

    def context(self, agent: AgentConfig) -> LaunchContext:
        row = self.store.agent(agent.slug)
        return launch_context(
            self.config,
            agent,
            self.environ,
            known_session_id=row.runtime_session_id if row else None,
            hook_command=self.hook_command,
        )

    # -- one pass ------------------------------------------------------------------------

    def reconcile_once(self) -> list[Action]:
        with self._lock:
            self._take_config()
            return self._reconcile_all()

    def _held(self) -> set[str]:
        """Agents kept down: stopped by a person (``/agent stop``) until ``/agent restart``, or
        ephemeral agents whose task is done."""
        return {row.slug for row in self.store.agents() if row.state in ("stopped", "done")}

    def _reconcile_all(self) -> list[Action]:
        snapshot = self.tmux.snapshot()
        actions: list[Action] = []
        held = self._held()
        wanted = {a.slug for a in self.config.enabled_agents()}
        for agent in self.config.enabled_agents():
            if agent.slug in held:
                continue
            action = self._reconcile_agent(agent, snapshot.get(agent.slug))
            if action:
                actions.append(action)
        for name, pane in snapshot.items():
            if name not in wanted and pane.mark == self.mark:
                self.tmux.kill_session(name)
                self.store.end_launch(name, "removed")
                self.store.forget_agent(name)
                self.tracks.pop(name, None)
                log.info("%s: stopped (no longer an enabled agent in the config)", name)
                actions.append(Action(name, "stopped", "removed from config"))
        return actions

    def _reconcile_agent(self, agent: AgentConfig, pane: PaneState | None) -> Action | None:
        slug = agent.slug
        runtime = get_runtime(agent.runtime)
        track = self.tracks.setdefault(slug, AgentTrack())
        spec = agent.spec_hash(self.config)
        if track.spec != spec:
            self.store.upsert_agent(slug, agent.runtime, agent_session_id(slug), spec)
            track.spec = spec
        ctx = self.context(agent)
        live = liveness.check(pane, runtime, ctx.bin)
        now = self.clock()
        launch = self.store.current_launch(slug)
        open_launch = launch is not None and launch.exited_at is None
        if live.alive:
            row = self.store.agent(slug)
            if row and row.state in ("starting", "crash_loop", "exited"):
                self.store.set_state(slug, "running")
            if not track.seen or launch is None or not open_launch:
                # A live agent this runner did not launch (the runner restarted, or the state
                # dir is new): adopt it rather than relaunch.
                track.seen = True
                if launch is None or not open_launch:
                    self.store.record_launch(slug, live.pid, ctx.known_session_id, True, "adopted")
                log.info("%s: adopted running %s (pid %s)", slug, runtime.name, live.pid)
                if self.listener:
                    self.listener.adopted(slug)
                return Action(slug, "adopted", f"pid {live.pid}")
            if launch.pid != live.pid and live.pid is not None:
                self.store.update_launch(launch.id, pid=live.pid)
            if now - track.discovered_at >= DISCOVERY_INTERVAL_S:
                track.discovered_at = now
                self._discover_session(agent, ctx, launch.started_at)
            if pane and pane.spec_hash != spec and track.spec_warned != pane.spec_hash:
                track.spec_warned = pane.spec_hash
                log.info("%s: launch settings changed; they apply at the next restart", slug)
            return None
        # Not alive.
        if open_launch:
            self.store.end_launch(slug, live.reason)
            log.info("%s: agent down: %s", slug, live.reason)
            crash_loop = self._schedule_retry(slug, track, now)
            if self.listener:
                self.listener.down(slug, crash_loop)
        if now < track.next_attempt:
            return None
        if now < self.next_launch_allowed:
            return Action(slug, "waiting", "launch stagger")
        return self._launch(agent, ctx, relaunch=launch is not None)

    def _schedule_retry(self, slug: str, track: AgentTrack, now: float) -> bool:
        """Set the next attempt; True when the agent is now in a crash loop."""
        policy = self.config.restart
        count = self.store.launch_failures_since(slug, now - policy.window_minutes * 60)
        if count >= policy.max_failures:
            track.next_attempt = now + policy.crash_loop_retry_seconds
            self.store.set_state(slug, "crash_loop", crash_loop_since=now)
            log.warning(
                "%s: crash_loop: %d exits in %.0f min; next try in %.0f s",
                slug,
                count,
                policy.window_minutes,
                policy.crash_loop_retry_seconds,
            )
            return True
        delay = (
            0.0
            if count <= 1
            else min(policy.backoff_initial_seconds * 2 ** (count - 2), policy.backoff_max_seconds)
        )
        track.next_attempt = now + delay
        self.store.set_state(slug, "exited")
        if delay:
            log.info("%s: restart in %.1f s (exit %d in the window)", slug, delay, count)
        return False

    def _launch(self, agent: AgentConfig, ctx: LaunchContext, *, relaunch: bool) -> Action:
        slug = agent.slug
        runtime = get_runtime(agent.runtime)
        runtime.prepare(ctx)
        plan = runtime.plan_launch(ctx)
        env = {k: v for k, v in ctx.env.items()}
        env.update(plan.env)
        env["KANBAN_SESSION_ID"] = ctx.agent_id
        env["AGENTBRIDGE_SLUG"] = slug
        if self.tokens is not None and self.hook_socket is not None:
            env["AGENTBRIDGE_HOOK_TOKEN"] = self.tokens.issue(slug)
            env["AGENTBRIDGE_HOOK_SOCKET"] = str(self.hook_socket)
        pane = self.tmux.launch(
            slug,
            ctx.workdir,
            plan.argv,
            env,
            mark=self.mark,
            spec_hash=agent.spec_hash(self.config),
        )
        now = self.clock()
        self.next_launch_allowed = now + self.config.launch_stagger_seconds
        self.tracks.setdefault(slug, AgentTrack()).seen = True
        self.store.record_launch(
            slug, pane.pid, plan.session_id, plan.resumed, json.dumps(list(plan.argv))
        )
        self.store.set_runtime_session(slug, plan.session_id)
        row = self.store.agent(slug)
        if relaunch:
            self.store.count_restart(slug)
        if row and row.state != "crash_loop":
            self.store.set_state(slug, "starting")
        how = f"resume {plan.session_id}" if plan.resumed else "fresh"
        verb = "relaunched" if relaunch else "launched"
        log.info("%s: %s %s (%s), pid %s", slug, verb, runtime.name, how, pane.pid)
        if self.listener:
            self.listener.launched(slug, runtime)
        return Action(slug, verb, how)

    def _discover_session(self, agent: AgentConfig, ctx: LaunchContext, started: float) -> None:
        """Record the session id a runtime minted itself (Codex), once its transcript exists."""
        if ctx.known_session_id:
            return
        runtime = get_runtime(agent.runtime)
        found = runtime.find_transcript(ctx, None, datetime.fromtimestamp(started, UTC))
        if found:
            self.store.set_runtime_session(agent.slug, found.session_id)
            launch = self.store.current_launch(agent.slug)
            if launch:
                self.store.update_launch(launch.id, session_id=found.session_id)
            log.info("%s: session %s (%s)", agent.slug, found.session_id, found.path)

    # -- loop -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        while not stop.is_set():
            try:  # the store away: the pass is retried with backoff until it is back
                await in_thread_retrying(self.reconcile_once, "a reconcile pass", stop)
            except Exception:  # one bad pass must not end supervision of the whole fleet
                if not stop.is_set():
                    log.exception("reconcile pass failed")
            await wait_event(stop, interval)

    def restart(self, slug: str) -> str:
        """Relaunch an agent now (a person asked): its current process is stopped first."""
        with self._lock:
            self._take_config()
            if self.config.agent(slug) is None:
                return f"unknown agent {slug!r}"
            self._kill(slug, "restarted")
            self.store.set_state(slug, "starting")
            self.tracks.pop(slug, None)
        log.info("%s: restart requested", slug)
        return f"{slug}: restarting"

    def stop(self, slug: str, state: str = "stopped") -> str:
        """Stop an agent and keep it down (across runner restarts) until it is restarted."""
        with self._lock:
            self._take_config()
            if self.config.agent(slug) is None:
                return f"unknown agent {slug!r}"
            self._kill(slug, state)
            self.store.set_state(slug, state)
        log.info("%s: %s", slug, "task done; stopped" if state == "done" else "stopped on request")
        return f"{slug}: stopped (until restarted)"

    def hand_over(self, slug: str, config: Config, *, record: bool = True) -> None:
        """A move: stop ``slug``'s CLI (its row keeps its state and session for the new host)
        and take ``config``, which no longer has it, so no pass relaunches or forgets it.
        ``record=False`` (the agent was taken from this host while it was away): nothing is
        written, the rows are the new host's."""
        with self._lock:
            self.update_config(config)
            self._take_config()
            pane = self.tmux.snapshot().get(slug)
            if pane is not None and pane.mark == self.mark:
                self.tmux.kill_session(slug)
                log.info("%s: stopped here (moved to another host)", slug)
            if record:
                self.store.end_launch(slug, "moved to another host")
            self.tracks.pop(slug, None)

    def _kill(self, slug: str, reason: str) -> None:
        pane = self.tmux.snapshot().get(slug)
        if pane is not None and pane.mark == self.mark:
            self.tmux.kill_session(slug)
        self.store.end_launch(slug, reason)

    def stop_all(self) -> None:
        for name, pane in self.tmux.snapshot().items():
            if pane.mark == self.mark:
                self.tmux.kill_session(name)
                self.store.end_launch(name, "stopped")
                log.info("%s: stopped (runner shutting down with --stop-agents)", name)
