"""Agent runtimes: the only place that knows CLI specifics.

Look a runtime up by the config's ``runtime`` name; nothing outside this package branches on it.
"""

from __future__ import annotations

from runtimes.base import LaunchContext, LaunchPlan, Runtime, TranscriptRef, agent_session_id
from runtimes.claude import ClaudeRuntime
from runtimes.codex import CodexRuntime

RUNTIMES: dict[str, Runtime] = {"claude": ClaudeRuntime(), "codex": CodexRuntime()}


def get_runtime(name: str) -> Runtime:
    try:
        return RUNTIMES[name]
    except KeyError:
        raise ValueError(f"unknown runtime {name!r} (known: {', '.join(RUNTIMES)})") from None


__all__ = [
    "RUNTIMES",
    "LaunchContext",
    "LaunchPlan",
    "Runtime",
    "TranscriptRef",
    "agent_session_id",
    "get_runtime",
]
