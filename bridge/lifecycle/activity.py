"""What each agent is doing right now, from hooks, the transcript and process liveness.

Hooks are the fast signal; the transcript is the source of truth when hooks are missing (an old
CLI, a broken hook pipeline). Once an agent's hooks have been heard from in a launch, only hooks
move it between idle and working, because the transcript file lags the screen and would flip a
finished turn back to "working". Liveness beats everything: a dead runtime is ``exited`` even if
it was ``waiting_input`` or ``compacting`` when it died.

``no_signal``: alive, but neither a hook nor a transcript line arrived within the grace period
after a launch that should have announced itself, or after a prompt was pasted. That is how a
silently broken hook pipeline or a wedged TUI becomes visible instead of looking idle forever.

``limited``: the account's usage limit stopped the agent's turn; nothing is pasted until the
limit watch (:mod:`bridge.lifecycle.limits`) lifts it at the reset. Hooks that would say "idle"
(Claude's idle notification, a ``Stop``) do not end it; a new prompt (someone typed in the
pane) does, since the CLI is then working again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from runtimes.events import Event, EventKind


class Activity(StrEnum):
    STARTING = "starting"
    IDLE = "idle"
    WORKING = "working"
    WAITING_INPUT = "waiting_input"
    COMPACTING = "compacting"
    EXITED = "exited"
    CRASH_LOOP = "crash_loop"
    NO_SIGNAL = "no_signal"
    LIMITED = "limited"


#: States of an open turn (what an interrupt ends).
IN_TURN = frozenset({Activity.WORKING, Activity.WAITING_INPUT, Activity.COMPACTING})
#: What an interrupt says when the CLI does not say who or why.
_UNKNOWN_INTERRUPT: dict[str, str | None] = {"source": None, "reason": None, "via": None}

#: States in which a prompt may be pasted at a turn boundary.
READY = frozenset({Activity.IDLE})
DEAD = frozenset({Activity.EXITED, Activity.CRASH_LOOP})


@dataclass
class AgentActivity:
    state: Activity = Activity.STARTING
    since: float = 0.0
    hooks_heard: bool = False
    deadline: float | None = None
    """When no signal by this time means ``no_signal``."""
    turn_ended_at: float | None = None
    """Transcript-only turn end, waiting out the quiet period before it counts as idle."""
    context_tokens: int | None = None
    context_window: int | None = None
    last_signal: float | None = None
    waiting_for: str | None = None
    """``question`` or ``approval`` while a person's answer is awaited through chat."""
    waiting_link: str | None = None
    """Where that question or approval is (a Slack permalink; "" when the chat has none)."""
    interruption: dict[str, str | None] | None = None
    """How the last turn was interrupted: the runtime's ``INTERRUPTED`` meta (``source``,
    ``reason``, ``via``), or all None when only the transcript's abort marker said so. Cleared
    when the next turn starts."""


ChangeListener = Callable[[str, Activity, Activity], None]


class ActivityTracker:
    def __init__(
        self,
        *,
        grace_seconds: float = 60.0,
        quiet_seconds: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.grace = grace_seconds
        self.quiet = quiet_seconds
        self.clock = clock
        self.agents: dict[str, AgentActivity] = {}
        self.listeners: list[ChangeListener] = []
        self.interruption_listeners: list[Callable[[str], None]] = []
        """Told when the CLI names who stopped a turn that had already ended (its hook after
        the transcript's abort marker): the state stays ``idle``, only ``interruption`` changed."""
        self.held: set[str] = set()
        """Agents under a usage limit: ``idle`` reads ``limited`` until :meth:`unlimited`."""

    def get(self, slug: str) -> AgentActivity:
        return self.agents.setdefault(slug, AgentActivity(since=self.clock()))

    def _set(self, slug: str, new: Activity) -> None:
        if new is Activity.IDLE and slug in self.held:
            new = Activity.LIMITED  # the CLI is idle, but held until the limit resets
        agent = self.get(slug)
        old = agent.state
        if old == new:
            return
        if new is Activity.WORKING and old not in IN_TURN:
            agent.interruption = None  # a new turn
        agent.state = new
        agent.since = self.clock()
        for listener in self.listeners:
            listener(slug, old, new)

    def _signal(self, slug: str) -> AgentActivity:
        agent = self.get(slug)
        agent.last_signal = self.clock()
        agent.deadline = None
        if agent.state is Activity.NO_SIGNAL:
            self._set(slug, Activity.IDLE)
        return agent

    # -- inputs ---------------------------------------------------------------------------

    def launched(self, slug: str, *, announces: bool) -> None:
        """A new launch; ``announces`` = the runtime signals readiness (Claude's SessionStart)."""
        agent = self.get(slug)
        agent.hooks_heard = False
        agent.turn_ended_at = None
        agent.deadline = self.clock() + self.grace if announces else None
        self._set(slug, Activity.STARTING)

    def adopted(self, slug: str) -> None:
        """A live agent found by a restarted runner: its state is unknown until a hook arrives
        or its screen shows the input prompt, so nothing is pasted into it mid-turn."""
        agent = self.get(slug)
        agent.deadline = None
        self._set(slug, Activity.STARTING)

    def screen_ready(self, slug: str) -> None:
        """The TUI shows its input prompt: the only ready signal a fresh Codex gives, and the
        way out of a ``/compact`` that ended without a hook (nothing to compact, an error)."""
        if self.get(slug).state in (Activity.STARTING, Activity.COMPACTING):
            self._set(slug, Activity.IDLE)

    def prompt_pasted(self, slug: str) -> None:
        agent = self.get(slug)
        agent.deadline = self.clock() + self.grace
        if agent.state is Activity.IDLE:
            self._set(slug, Activity.WORKING)

    def asking(self, slug: str, what: str, link: str | None) -> None:
        """The agent waits on a person's answer to a question or approval posted in chat.

        Until :meth:`answered`, tool hooks do not move it back to working (the relay hooks of
        the same tool call may arrive after the blocking one), so nothing is pasted in."""
        agent = self.get(slug)
        if agent.state in DEAD or (agent.waiting_for, agent.waiting_link) == (what, link):
            return
        agent.waiting_for, agent.waiting_link = what, link
        if agent.state is Activity.WAITING_INPUT:  # a new link: tell the listeners again
            for listener in self.listeners:
                listener(slug, Activity.WAITING_INPUT, Activity.WAITING_INPUT)
        self._set(slug, Activity.WAITING_INPUT)

    def answered(self, slug: str) -> None:
        """The answer went to the agent (or it stopped waiting): its turn goes on."""
        agent = self.get(slug)
        agent.waiting_for = agent.waiting_link = None
        if agent.state is Activity.WAITING_INPUT:
            self._set(slug, Activity.WORKING)

    def compaction_started(self, slug: str) -> None:
        """The runner itself sent ``/compact``: compacting until the transcript or a hook says
        it is done (an agent without hooks would otherwise look idle and get more prompts)."""
        if self.get(slug).state not in DEAD:
            self._set(slug, Activity.COMPACTING)

    def limited(self, slug: str) -> None:
        """The account's usage limit stopped the agent (held until :meth:`unlimited`)."""
        self.held.add(slug)
        agent = self.get(slug)
        agent.turn_ended_at = None
        if agent.state not in (*DEAD, Activity.STARTING):
            self._set(slug, Activity.LIMITED)

    def unlimited(self, slug: str) -> None:
        """The limit has reset: the agent takes prompts again."""
        self.held.discard(slug)
        if self.get(slug).state is Activity.LIMITED:
            self._set(slug, Activity.IDLE)

    def interrupted(self, slug: str) -> None:
        """The runner interrupted the turn and the CLI shows its input prompt again (no hook
        reports an interrupt)."""
        if self.get(slug).state is Activity.WORKING:
            self._set(slug, Activity.IDLE)

    def liveness(self, slug: str, alive: bool, crash_loop: bool = False) -> None:
        if crash_loop:
            self._set(slug, Activity.CRASH_LOOP)
        elif not alive:
            agent = self.get(slug)
            agent.deadline = None
            agent.waiting_for = agent.waiting_link = None
            self._set(slug, Activity.EXITED)

    def hook(self, slug: str, event: str, payload: dict[str, Any]) -> None:
        agent = self._signal(slug)
        if agent.state in DEAD:
            return  # a straggler from a dying process; the reconciler decides about life
        if event == "statusline":
            return  # its context size comes as the runtime's CONTEXT_SIZE event
        agent.hooks_heard = True
        target = _hook_target(event, payload)
        if event == "SessionStart" and agent.state is Activity.WORKING:
            return  # Codex starts its session with the first prompt: the turn goes on
        if target is not None:
            if agent.state is Activity.COMPACTING and target is Activity.WORKING:
                return  # tool hooks of the summarizer do not end compaction
            if agent.waiting_for is not None:
                if target is Activity.WORKING or target is Activity.WAITING_INPUT:
                    return  # only the answer (or the turn's end) ends the wait
                agent.waiting_for = agent.waiting_link = None
            self._set(slug, target)

    def event(self, slug: str, event: Event) -> None:
        agent = self._signal(slug)
        if event.kind is EventKind.CONTEXT_SIZE:
            if event.tokens is not None:  # a status line may know the window only
                agent.context_tokens = event.tokens
            if event.context_window:
                agent.context_window = event.context_window
            return
        if event.kind is EventKind.INTERRUPTED:
            self._interrupted(slug, agent, event)
            return
        if event.kind is EventKind.COMPACTION:
            if agent.state is Activity.COMPACTING:
                self._set(slug, Activity.IDLE)
            return
        if (
            event.kind is EventKind.TURN_END
            and event.meta.get("aborted")
            and (event.meta.get("reason") != "replaced")
        ):
            if agent.state is Activity.WORKING:  # an interrupt the CLI's hooks did not report
                agent.interruption = dict(_UNKNOWN_INTERRUPT)
                self._set(slug, Activity.IDLE)
            return
        if agent.hooks_heard or agent.state in DEAD:
            return
        if event.kind in (EventKind.TURN_START, EventKind.USER_PROMPT, EventKind.TOOL_CALL):
            agent.turn_ended_at = None
            if event.context_window:
                agent.context_window = event.context_window
            self._set(slug, Activity.WORKING)
        elif event.kind is EventKind.TURN_END:
            agent.turn_ended_at = self.clock()

    def tick(self) -> None:
        """Time-driven transitions: quiet period after a transcript turn end, no_signal."""
        now = self.clock()
        for slug, agent in self.agents.items():
            if agent.turn_ended_at is not None and now - agent.turn_ended_at >= self.quiet:
                agent.turn_ended_at = None
                if agent.state in (Activity.WORKING, Activity.STARTING):
                    self._set(slug, Activity.IDLE)
            if agent.deadline is not None and now >= agent.deadline:
                agent.deadline = None
                if agent.state not in DEAD:
                    self._set(slug, Activity.NO_SIGNAL)

    def _interrupted(self, slug: str, agent: AgentActivity, event: Event) -> None:
        """The CLI says an interrupt ended the turn: it is over, whatever it was doing (a
        picker it waited on is gone too). Arriving after the transcript's abort marker already
        ended it, it only adds who stopped the turn."""
        meta = {k: event.meta.get(k) for k in _UNKNOWN_INTERRUPT}
        if agent.state in IN_TURN:
            agent.waiting_for = agent.waiting_link = None
            agent.turn_ended_at = None
            agent.interruption = meta
            self._set(slug, Activity.IDLE)
        elif agent.state is Activity.IDLE and agent.interruption not in (None, meta):
            agent.interruption = meta
            for listener in self.interruption_listeners:
                listener(slug)


def _hook_target(event: str, payload: dict[str, Any]) -> Activity | None:
    if event == "SessionStart":
        return Activity.IDLE
    if event in ("UserPromptSubmit", "PreToolUse", "PostToolUse"):
        return Activity.WORKING
    if event == "Stop":
        return Activity.IDLE
    if event == "PreCompact":
        return Activity.COMPACTING
    if event == "PermissionRequest":
        return Activity.WAITING_INPUT
    if event == "Notification":
        kind = payload.get("notification_type")
        if kind == "permission_prompt":
            return Activity.WAITING_INPUT
        if kind == "idle_prompt":
            return Activity.IDLE
    # SessionEnd is not death: /clear ends a session and starts another in the same process.
    # Whether the CLI is gone is the reconciler's call (process liveness).
    return None
