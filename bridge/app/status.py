"""``agentbridge status``: what each agent is doing, from the state store and a live tmux look.

It works whether or not the runner is up: liveness is checked on tmux directly, so a status
taken while the runner is down still tells the truth about the agents.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from bridge.answers.book import status_of as ask_status
from bridge.config import access
from bridge.config.model import Config
from bridge.config.placement import runner_host
from bridge.fleet import liveness
from bridge.fleet.launch import launch_context
from bridge.fleet.tmux import TmuxServer
from bridge.store.db import Store
from bridge.store.hosts import HostBook
from bridge.store.ledger import Ledger
from bridge.store.limits import load as limit_wait
from bridge.store.queue import PromptQueue
from bridge.store.unknown_records import counts as unknown_counts
from runtimes import get_runtime

#: States that explain why an agent is down, shown instead of a plain "exited".
SHOWN_AS_IS = ("crash_loop", "stopped", "done")


@dataclass(frozen=True, slots=True)
class AgentStatus:
    slug: str
    runtime: str
    alive: bool
    pid: int | None
    session_id: str | None
    restarts: int
    uptime_s: float | None
    state: str
    enabled: bool
    detail: str
    mirrored: int
    bad_lines: int
    activity: str
    context_tokens: int | None
    unknown_records: dict[str, int]
    """Transcript records of types the parser did not know, by type (a format change's
    first sign; see bridge/store/unknown_records.py)."""
    queued: int
    waiting: dict[str, object] | None = None
    """What a ``waiting_input`` agent waits for through chat: ``for`` (question or
    approval), ``what``, ``link`` to the message, ``since``; None when nothing is asked."""
    answers: list[dict[str, object]] = field(default_factory=list)
    """The latest audited answers to its questions and approvals (who, when, what), newest
    first, including refused clicks and timeouts."""
    access: str = "local"
    """``local`` (console backend), ``allowlist``, ``channel-members`` or ``closed``."""
    skipped_posts: int = 0
    """Mirrored events Slack refused for good (channel gone, content refused): see the log."""
    host: str | None = None
    """The host whose runner runs it (``host:``); None on a single box."""
    limited_until: float | None = None
    """While ``limited``: when the runner continues the agent (the usage limit's reset)."""


def _remote(config: Config, store: Store | None) -> Callable[[str | None], str | None]:
    """For an agent's ``host:``: why this box cannot look at its tmux (it runs on another host:
    "host up" / "host down"), or None when it is ours. A shared store tells the other hosts'
    agents' state and heartbeat, so ``status`` from any host covers the whole fleet."""
    me = runner_host()
    beats = {}
    if store is not None:
        try:
            beats = {h.host: h for h in HostBook(store).hosts()}
        except Exception:  # a state dir from before the hosts table: no heartbeats
            beats = {}

    def why(host: str | None) -> str | None:
        if host is None or host == me:
            return None
        beat = beats.get(host)
        if beat is None:
            return "host never seen"
        return "host up" if beat.age() <= config.host_down_after_seconds else "host down"

    return why


def collect(
    config: Config, store: Store | None, tmux: TmuxServer, *, slack: bool | None = None
) -> list[AgentStatus]:
    """``slack``: whether the runner uses Slack (doctor's ``uses_slack``, which also reads
    ``runner.json``); by default this process's environment decides."""
    snapshot = tmux.snapshot()
    remote = _remote(config, store)
    rows = {r.slug: r for r in store.agents()} if store else {}
    ledger = Ledger(store) if store else None
    queue = PromptQueue(store) if store else None
    out: list[AgentStatus] = []
    now = time.time()
    slack = access.slack_configured(os.environ) if slack is None else slack
    for agent in config.agents:
        row = rows.get(agent.slug)
        runtime = get_runtime(agent.runtime)
        ctx = launch_context(config, agent, os.environ)
        live = liveness.check(snapshot.get(agent.slug), runtime, ctx.bin)
        launch = store.current_launch(agent.slug) if store else None
        elsewhere = remote(agent.host)
        if elsewhere is not None:  # its runner's record, not our tmux
            up = elsewhere == "host up" and row is not None and row.state == "running"
            pid = launch.pid if up and launch and not launch.exited_at else None
            live = liveness.Liveness(up, pid, elsewhere)
        uptime = now - launch.started_at if live.alive and launch and not launch.exited_at else None
        state = row.state if row else "unknown"
        if not agent.enabled:
            state = "disabled"
        elif not live.alive and state not in SHOWN_AS_IS:
            state = "exited" if row else "not started"
        elif live.alive and state in ("exited", "unknown"):
            state = "running"
        out.append(
            AgentStatus(
                slug=agent.slug,
                runtime=agent.runtime,
                alive=live.alive,
                pid=live.pid,
                session_id=row.runtime_session_id if row else None,
                restarts=row.restarts if row else 0,
                uptime_s=round(uptime, 1) if uptime is not None else None,
                state=state,
                enabled=agent.enabled,
                detail=live.reason,
                mirrored=ledger.posted_count(agent.slug) if ledger else 0,
                bad_lines=ledger.bad_lines(agent.slug) if ledger else 0,
                activity=_activity(state, live.alive, row.activity if row else None),
                context_tokens=row.context_tokens if row else None,
                unknown_records=unknown_counts(store, agent.slug) if store else {},
                queued=queue.counts(agent.slug).get("queued", 0) if queue else 0,
                **(ask_status(store, agent.slug) if store else {}),
                access=access.kind(config, agent, slack=slack),
                skipped_posts=ledger.skipped_count(agent.slug) if ledger else 0,
                host=agent.host,
                limited_until=_limited_until(store, agent.slug) if live.alive else None,
            )
        )
    return out


def as_json(statuses: list[AgentStatus]) -> list[dict[str, object]]:
    return [asdict(s) for s in statuses]


#: (header, value) for every column; ``NARROW`` is the subset that fits 80 columns.
COLUMNS: dict[str, Callable[[AgentStatus], str]] = {
    "agent": lambda s: s.slug,
    "runtime": lambda s: s.runtime,
    "state": lambda s: s.state,
    "activity": lambda s: s.activity + _until(s.limited_until),
    "context": lambda s: f"{s.context_tokens // 1000}k" if s.context_tokens is not None else "-",
    "pid": lambda s: str(s.pid or "-"),
    "restarts": lambda s: str(s.restarts),
    "uptime": lambda s: _duration(s.uptime_s),
    "mirrored": lambda s: str(s.mirrored),
    "bad lines": lambda s: str(s.bad_lines),
    "unknown": lambda s: str(sum(s.unknown_records.values())),
    "queued": lambda s: str(s.queued),
    "session": lambda s: s.session_id or "-",
    "host": lambda s: s.host or "-",
}
NARROW = ("agent", "runtime", "activity", "context", "uptime", "restarts", "queued")
"""What a person checks at a glance, in 80 columns: the activity already names a down
agent's reason (exited, crash_loop, stopped, disabled); ``--wide`` shows everything."""


def print_table(
    statuses: list[AgentStatus], console: Console | None = None, *, wide: bool = False
) -> None:
    """One row per agent, one header per column, two spaces between columns and no vertical
    rules, so slugs up to about 20 characters fit 80 columns. Only the agent column may wrap
    (a longer slug), never with an ellipsis, and no header or value is ever cut.

    Piped or redirected (not a terminal), there is nothing to fit: every value is printed in
    full on its row, whatever width rich would assume (80 by default). In a terminal too narrow
    for all the columns (``--wide`` in 80 columns), the columns are folded into several tables
    one after the other, each starting with the agent column, rather than squeezed into
    one-letter headers."""
    out = console or Console()
    names = tuple(COLUMNS) if wide else NARROW
    if not wide and any(s.host for s in statuses):
        names = (*names, "host")
    widths = {name: _width(name, statuses) for name in names}
    if not out.is_terminal:
        full = sum(widths.values()) + GAP * len(names)
        out = Console(file=out.file, width=max(full, out.width), color_system=None)
        out.print(_table(statuses, names))
        return
    widths["agent"] = min(widths["agent"], AGENT_BUDGET)  # it may wrap; the others may not
    groups = _fold(names, widths, out.width)
    agent_max = widths["agent"] if len(groups) > 1 else None  # the same wrap in every group
    for i, group in enumerate(groups):
        if i:
            out.print()
        out.print(_table(statuses, group, agent_max))


AGENT_BUDGET = 20
"""Width kept for the agent column when folding: a longer slug wraps inside it."""
GAP = 2
"""Columns are two characters apart (the right padding and the box's blank vertical)."""


def _width(name: str, statuses: list[AgentStatus]) -> int:
    return max([cell_len(name), *(cell_len(COLUMNS[name](s)) for s in statuses)])


def _fold(names: tuple[str, ...], widths: dict[str, int], width: int) -> list[tuple[str, ...]]:
    """Groups of columns that each fit ``width`` (:data:`GAP` between columns), every group
    after the first starting again with the agent column so each row says whose it is."""
    groups: list[tuple[str, ...]] = []
    group: tuple[str, ...] = (names[0],)
    used = widths[names[0]]
    for name in names[1:]:
        if used + GAP + widths[name] > width and len(group) > 1:
            groups.append(group)
            group, used = (names[0],), widths[names[0]]
        group, used = (*group, name), used + GAP + widths[name]
    groups.append(group)
    return groups


def _table(
    statuses: list[AgentStatus], names: tuple[str, ...], agent_max: int | None = None
) -> Table:
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False)
    for name in names:
        if name == "agent":
            table.add_column(name, overflow="fold", max_width=agent_max)
        else:
            table.add_column(name, no_wrap=True)
    for s in statuses:
        table.add_row(*(COLUMNS[name](s) for name in names))
    return table


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _limited_until(store: Store | None, slug: str) -> float | None:
    wait = limit_wait(store, slug) if store else None
    return wait.resets_at if wait is not None and wait.continued_at is None else None


def _until(at: float | None) -> str:
    return time.strftime(" →%H:%M", time.localtime(at)) if at is not None else ""


def _activity(state: str, alive: bool, recorded: str | None) -> str:
    """A dead runtime always wins over whatever the last signal said."""
    if state in (*SHOWN_AS_IS, "disabled"):
        return state
    if not alive:
        return "exited"
    return recorded or "starting"
