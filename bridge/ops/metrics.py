"""The Prometheus endpoint (``metrics: {listen: ...}``, off by default): the figures an operator
alerts on, per agent and per runner.

Who reads what, and on which thread: the endpoint is ``prometheus_client``'s own HTTP server
thread. Figures owned by the runner's event loop (each agent's activity and how long it has been
in it, the mirror's failing passes, the loop's lag, Slack's 429s) are copied by a loop task into
an immutable :class:`LoopFigures` once a second, and a scrape reads the latest copy: the loop's
objects are never read from another thread. Figures from the store (queue depth, posts, restarts,
limits) are read by the scrape itself, in its thread, through the callables the runner hands in,
so a scrape never waits for the loop, and a slow database delays only the scrape. A store error
during a scrape is a figure too (``agentbridge_store_up 0``), never a failed scrape.

Names follow Prometheus' conventions (base units, ``_total`` for counters, ``_seconds``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("agentbridge.metrics")


@dataclass(frozen=True, slots=True)
class AgentNow:
    """One agent, as the loop sees it."""

    slug: str
    activity: str
    since: float
    """``time.time()`` when it entered ``activity``."""
    in_turn: bool
    mirror_failures: int
    transcript: str | None
    """The transcript file its mirror follows (its age is read at scrape time)."""


@dataclass(frozen=True, slots=True)
class LoopFigures:
    """What the loop knows, copied once a second."""

    states: tuple[str, ...] = ()
    agents: tuple[AgentNow, ...] = ()
    loop_lag_s: float = 0.0
    """The longest the loop was late over the last copy's interval."""
    rate_limited: Mapping[str, int] = field(default_factory=dict)
    """Slack's 429 answers since start, by method."""
    chat_connected: bool | None = None
    """Whether the chat's event connection is up; None for a backend without one."""


@dataclass(frozen=True, slots=True)
class StoredAgent:
    """One agent, as the store records it (read at scrape time)."""

    slug: str
    alive: bool
    queued: int
    posts: int
    skipped_posts: int
    restarts: int
    limited_until: float | None


class FleetCollector(Collector):
    """Renders the latest :class:`LoopFigures` and the store's figures for one scrape."""

    def __init__(
        self,
        stored: Callable[[], list[StoredAgent]],
        probe: Callable[[], None],
    ) -> None:
        self.now = LoopFigures()
        """Replaced (never mutated) by the loop's copy task."""
        self._stored = stored
        self._probe = probe

    def collect(self) -> Iterator[Metric]:
        figures = self.now
        yield from self._loop_metrics(figures)
        started = time.monotonic()
        try:
            self._probe()
            stored = self._stored()
            up = 1.0
        except Exception as err:  # a database away is an alert, not a failed scrape
            log.warning("metrics: the store could not be read (%s)", err)
            stored, up = [], 0.0
        yield _gauge("agentbridge_store_up", "1 when the store answered this scrape", up)
        if up:
            latency = time.monotonic() - started
            yield _gauge("agentbridge_store_latency_seconds", "this scrape's store reads", latency)
        yield from _stored_metrics(stored)

    def _loop_metrics(self, figures: LoopFigures) -> Iterator[Metric]:
        yield _gauge(
            "agentbridge_loop_lag_seconds", "the event loop's worst lateness", figures.loop_lag_s
        )
        if figures.chat_connected is not None:
            yield _gauge(
                "agentbridge_chat_connected",
                "1 while the chat's event connection (Slack Socket Mode) is up",
                float(figures.chat_connected),
            )
        limited = CounterMetricFamily(
            "agentbridge_slack_rate_limited", "Slack's 429 answers, by method", labels=["method"]
        )
        for method, count in sorted(figures.rate_limited.items()):
            limited.add_metric([method], count)
        yield limited
        activity = GaugeMetricFamily(
            "agentbridge_agent_activity",
            "1 for the agent's activity now",
            labels=["agent", "activity"],
        )
        in_state = _agent_gauge("agentbridge_agent_activity_seconds", "time in its activity")
        turn = _agent_gauge("agentbridge_agent_turn_age_seconds", "age of its open turn (0: none)")
        failing = _agent_gauge(
            "agentbridge_agent_mirror_failures", "its mirror's failed passes in a row"
        )
        line_age = _agent_gauge(
            "agentbridge_agent_transcript_age_seconds", "since its transcript's last write"
        )
        now = time.time()
        for agent in figures.agents:
            for state in figures.states:
                activity.add_metric([agent.slug, state], float(state == agent.activity))
            age = max(now - agent.since, 0.0)
            in_state.add_metric([agent.slug], age)
            turn.add_metric([agent.slug], age if agent.in_turn else 0.0)
            failing.add_metric([agent.slug], agent.mirror_failures)
            if agent.transcript:
                with contextlib.suppress(OSError):  # rotated away this instant: next scrape
                    line_age.add_metric(
                        [agent.slug], max(now - os.stat(agent.transcript).st_mtime, 0.0)
                    )
        yield from (activity, in_state, turn, failing, line_age)


def _stored_metrics(stored: list[StoredAgent]) -> Iterator[Metric]:
    alive = _agent_gauge("agentbridge_agent_alive", "1 while its CLI process runs")
    queued = _agent_gauge("agentbridge_agent_queue_depth", "prompts queued, not yet delivered")
    limited = _agent_gauge("agentbridge_agent_limited", "1 while held by a usage limit")
    reset = _agent_gauge(
        "agentbridge_agent_limit_reset_timestamp_seconds", "when its usage limit resets"
    )
    posts = CounterMetricFamily("agentbridge_agent_posts", "messages mirrored", labels=["agent"])
    skipped = CounterMetricFamily(
        "agentbridge_agent_skipped_posts", "events the chat refused for good", labels=["agent"]
    )
    restarts = CounterMetricFamily(
        "agentbridge_agent_restarts", "relaunches of its CLI", labels=["agent"]
    )
    for agent in stored:
        alive.add_metric([agent.slug], float(agent.alive))
        queued.add_metric([agent.slug], agent.queued)
        limited.add_metric([agent.slug], float(agent.limited_until is not None))
        if agent.limited_until is not None:
            reset.add_metric([agent.slug], agent.limited_until)
        posts.add_metric([agent.slug], agent.posts)
        skipped.add_metric([agent.slug], agent.skipped_posts)
        restarts.add_metric([agent.slug], agent.restarts)
    yield from (alive, queued, limited, reset, posts, skipped, restarts)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _agent_gauge(name: str, doc: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=["agent"])


class MetricsServer:
    """The endpoint's HTTP server (its own thread); :meth:`close` stops it."""

    def __init__(self, collector: FleetCollector, host: str, port: int) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self._httpd, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.port = int(self._httpd.server_address[1])
        log.info("metrics: serving http://%s:%d/metrics", host, self.port)

    def close(self) -> None:
        """Blocking (it waits for the server thread): call it off the loop."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
