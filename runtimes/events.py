"""The common event vocabulary every runtime parser produces.

Transcripts differ wildly between CLIs (and between versions of one CLI); the mirror, the
activity machine and the compaction guard only ever see these small frozen records. Each event
carries a stable ``id`` that depends only on the transcript line it came from (never on parser
state built from earlier lines), so a tailer that resumes at a stored byte offset produces the
very same ids, and the ledger can dedupe across crashes and across two transcript shapes that
describe the same thing (e.g. a Codex tool call seen as ``function_call`` and as
``CommandExecution`` shares the id ``tool:<call_id>``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    USER_PROMPT = "user_prompt"
    ASSISTANT_TEXT = "assistant_text"
    THINKING = "thinking"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    COMPACTION = "compaction"
    CONTEXT_SIZE = "context_size"
    TURN_START = "turn_start"
    TURN_END = "turn_end"
    USAGE_LIMIT = "usage_limit"
    """The account's usage limit stopped the turn; ``resets_at`` when the CLI said when."""
    USAGE = "usage"
    """A usage report: ``used_percent`` of the window and when it ``resets_at`` (the warning
    signal, and a reset-time hint for a limit that comes without one)."""
    INTERRUPTED = "interrupted"
    """The CLI itself says an interrupt ended the turn (it really stopped: no answer follows).
    ``meta`` says who and how, each None when the CLI does not say: ``source`` (``user`` a
    person or a client that names nobody, ``session`` another agent session, ``system`` a
    hook, a permission check or a service), ``reason`` (``stop``, ``permission_denied``,
    ``rewind``, ``other``) and ``via`` (``terminal``, ``client``)."""


#: Kinds that become chat messages; the rest are signals (activity, context size).
MIRRORED_KINDS = frozenset(
    {
        EventKind.USER_PROMPT,
        EventKind.ASSISTANT_TEXT,
        EventKind.THINKING,
        EventKind.TOOL_CALL,
        EventKind.TOOL_RESULT,
        EventKind.COMPACTION,
    }
)


ASKS_META = "asks"
"""``Event.meta`` key a runtime's parser sets on a tool call that asks the user something
(Claude's ``AskUserQuestion``, Codex's ``request_user_input``): the question texts. The mirror
shows such a call as ``Asked: <question>``, not as its raw input."""


@dataclass(frozen=True, slots=True)
class Event:
    """One thing an agent said or did, or one signal about its state."""

    kind: EventKind
    id: str
    text: str = ""
    tool: str | None = None
    tool_input: dict[str, Any] | None = None
    call_id: str | None = None
    is_error: bool = False
    tokens: int | None = None
    context_window: int | None = None
    timestamp: str | None = None
    resets_at: float | None = None
    """USAGE_LIMIT / USAGE: when the usage window resets (epoch seconds), if known."""
    used_percent: float | None = None
    """USAGE_LIMIT / USAGE: how much of the usage window is used (0-100), if known."""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def mirrored(self) -> bool:
        return self.kind in MIRRORED_KINDS


@dataclass(frozen=True, slots=True)
class LineResult:
    """What parsing one transcript line gave: its events, or that it was bad.

    ``bad`` is set for lines that are not valid JSON objects; unknown but well-formed
    record types are not bad, they simply yield no events, and ``unknown`` names them
    (``"foo"``, ``"event_msg/foo"``): a type the parser has never seen is the first sign that
    a CLI release changed its transcript format, so the mirror counts them per agent.
    """

    events: tuple[Event, ...] = ()
    bad: bool = False
    unknown: str | None = None
