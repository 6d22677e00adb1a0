"""The one small interface every agent CLI is driven through.

Everything that differs between Claude Code and Codex (argv, first-run dialogs, where the
transcript lives, how a transcript line reads) lives behind :class:`Runtime`, so the daemon never
branches on a runtime name. Inputs and outputs are small frozen dataclasses, in the manner of
libtmux's agent driver, so a plan can be logged, compared and tested without side effects.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from runtimes.asks import WAIT_FOREVER_S, Ask
from runtimes.canary import Canary
from runtimes.claude_screen import Key, Picker
from runtimes.events import Event, LineResult

#: Fixed namespace for agent identities: ``KANBAN_SESSION_ID = uuid5(NAMESPACE, slug)``.
#: Never change it: a new namespace would orphan every agent's Claude transcript.
AGENT_NAMESPACE = uuid.UUID("6f2b1c3e-8d4a-5b7f-9e0d-2a1c3b4d5e6f")


def agent_session_id(slug: str) -> str:
    """The stable identity of an agent, exported as KANBAN_SESSION_ID."""
    return str(uuid.uuid5(AGENT_NAMESPACE, slug))


@dataclass(frozen=True, slots=True)
class LaunchContext:
    """Everything a runtime needs to know to start one agent."""

    slug: str
    workdir: Path
    bin: str
    env: Mapping[str, str]
    """The full environment the agent will see (runner env overlaid with the agent's ``env``);
    runtimes read ``CLAUDE_CONFIG_DIR`` / ``CODEX_HOME`` / API keys from it."""
    model: str | None = None
    extra_args: tuple[str, ...] = ()
    resume: bool = True
    known_session_id: str | None = None
    """The runtime's own session id recorded at an earlier launch (Codex mints its own)."""
    hook_command: str | None = None
    """Absolute command prefix the agent's hooks should run (``/abs/agentbridge hook``)."""
    permissions: str = "bypass"
    """``bypass`` (no approvals, the default) or ``ask`` (approvals relayed to chat)."""
    permission_mode: str = "default"
    """The CLI's own permission mode under ``ask`` (Claude ``--permission-mode``)."""
    ask_timeout_s: int = WAIT_FOREVER_S
    """How long a blocking (question / approval) hook may hold the agent before the CLI kills
    it and falls back to its own picker."""
    ask_hook: bool = True
    """Whether the blocking question hook is installed (``answers: {via: pane}`` leaves it out
    and the runner answers the picker on screen with keys instead)."""

    @property
    def agent_id(self) -> str:
        return agent_session_id(self.slug)


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    """The exact process a runtime wants started in the agent's pane."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    """Variables to export into the pane on top of the agent's own ``env``."""
    session_id: str | None = None
    """The runtime session id this launch will write to, when known in advance."""
    resumed: bool = False


@dataclass(frozen=True, slots=True)
class AskSupport:
    """Which asks a CLI version relays through hooks, and why not when it cannot."""

    questions: bool
    approvals: bool
    why_not: str = ""
    """One line for ``doctor`` / ``validate`` when ``approvals`` is False."""


@dataclass(frozen=True, slots=True)
class TranscriptRef:
    """A located transcript file and the runtime session it belongs to."""

    path: Path
    session_id: str


class Runtime(Protocol):
    """What the daemon needs from an agent CLI."""

    name: str
    default_bin: str
    self_compacts: bool
    """True when the CLI compacts on its own, so the runner's guard is off by default."""

    def probe_version(self, bin: str) -> str:
        """Run ``bin --version`` and return the version string; raise RuntimeError if unusable."""
        ...

    def prepare(self, ctx: LaunchContext) -> None:
        """Pre-answer first-run dialogs (config files outside the work tree). Idempotent."""
        ...

    def plan_launch(self, ctx: LaunchContext) -> LaunchPlan:
        """Build the argv for a fresh launch or a resume."""
        ...

    def is_agent_process(self, cmdline: list[str], bin: str) -> bool:
        """Whether a process command line is this runtime's CLI (for liveness checks)."""
        ...

    def find_transcript(
        self, ctx: LaunchContext, session_id: str | None, launched_at: datetime
    ) -> TranscriptRef | None:
        """Locate the transcript of the current launch, cheaply; None if not there yet."""
        ...

    def transcript_roots(self, ctx: LaunchContext) -> list[Path]:
        """Directories under which this agent's transcripts appear (watched for changes)."""
        ...

    announces_launch: bool
    submit_pause: float
    """The longest wait between a paste and its Enter when the paste never shows on screen
    (see :meth:`paste_shown`), so the CLI does not take Enter as pasted text."""
    """True when the CLI fires a hook at launch (so silence after launch means trouble)."""

    def is_ready_screen(self, screen: str) -> bool:
        """Whether a captured pane shows the CLI idle at its input prompt."""
        ...

    def paste_shown(self, before: str, after: str, text: str) -> bool:
        """Whether the pane capture ``after`` shows ``text`` pasted into the composer, which the
        capture ``before`` (taken just before the paste) did not: then Enter may follow at once
        (:mod:`runtimes.paste`). ``submit_pause`` is only the fallback when it never shows."""
        ...

    def composer(self, screen: str) -> str | None:
        """The first line of the CLI's input box in a capture (None when none is drawn): the
        runner holds the pane after Enter until it changes, so the next paste is not read
        together with that Enter (:mod:`runtimes.paste`)."""
        ...

    model_api: str
    """Which model API the CLI speaks ("anthropic" or "openai"): picks the fake server."""

    def offline(self, home: Path, model_url: str) -> tuple[dict[str, str], list[str]]:
        """Agent ``env`` and ``args`` that run the CLI in a CLI home of its own (``home``)
        against a loopback model server at ``model_url`` (tests, benches and the demo)."""
        ...

    def canary(self, plan: LaunchPlan) -> Canary:
        """A run of the CLI with ``plan``'s exact flags that exits at once (doctor)."""
        ...

    def parse_ask(self, event: str, payload: dict[str, Any]) -> Ask | None:
        """The question or approval a blocking hook carries, or None (nothing to ask)."""
        ...

    def ask_support(self, version: str | None) -> AskSupport:
        """What this CLI (at ``version``, None = unknown) can relay to chat."""
        ...

    def ask_conflict(self, args: Sequence[str]) -> str | None:
        """Why extra ``args`` defeat ``permissions: ask`` (a bypass flag), or None."""
        ...

    def parse_picker(self, screen: str) -> Picker | None:
        """The question picker a captured pane shows (the no-hook fallback), or None."""
        ...

    def picker_keys(self, picker: Picker, value: str) -> tuple[Key, ...]:
        """The keystrokes that give ``value`` to ``picker``; () when the picker cannot take it."""
        ...

    interrupt_key: str
    """The tmux key that interrupts a running turn (a stuck one, or one over its time)."""

    def hook_events(self, event: str, payload: dict[str, Any]) -> tuple[Event, ...]:
        """Common events a hook message carries (a usage limit, a usage report); most none."""
        ...

    def screen_events(self, screen: str, now: float) -> tuple[Event, ...]:
        """Common events a captured pane shows (a limit line and its reset time), if any."""
        ...

    def screen_fingerprint(self, screen: str) -> str:
        """A pane's content without its animation: equal fingerprints mean no progress."""
        ...

    def parse_line(self, line: bytes, offset: int, source: str) -> LineResult:
        """Turn one transcript line (no trailing newline) into events.

        ``offset`` is the byte offset of the line in its file and ``source`` a short name of the
        file; ids built from them stay stable when tailing resumes at a stored offset.
        Never raises: malformed input gives ``LineResult(bad=True)``.
        """
        ...


def merged_env(base: Mapping[str, str], overlay: Mapping[str, str]) -> dict[str, str]:
    env = dict(base)
    env.update(overlay)
    return env


def cmdline_matches(cmdline: list[str], bin: str, name: str) -> bool:
    """Whether a command line runs the CLI: its binary or script (argv[0] or a node script)."""
    wanted = {os.path.basename(bin), name}
    real_bin = os.path.realpath(bin) if os.path.sep in bin else None
    for arg in cmdline[:2]:
        base = os.path.basename(arg)
        if base in wanted or name in arg.split(os.path.sep)[-3:-1] or base.startswith(name):
            return True
        if real_bin and os.path.realpath(arg) == real_bin:
            return True
    return False
