"""Where each mirrored event goes: which thread, with which header, or nowhere.

A turn a person started from Slack is answered in that message's thread, and the prompt itself
is not echoed back (they can see what they wrote). A turn started any other way (a scheduled
prompt, a compaction nudge, someone typing in the tmux pane, ``agentbridge send``) goes
top-level, its prompt shown with a short header saying where it came from.

The origin of a prompt is learned when the queue matches it to a delivered item (by the
runtime's UserPromptSubmit hook or the prompt's transcript line, whichever comes first); the
transcript's USER_PROMPT event then picks the route for the whole turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bridge.store.queue import Kind, QueueItem, echoes, normalized
from runtimes.events import Event, EventKind

HEADERS = {
    Kind.SCHEDULED: ":alarm_clock: *Scheduled prompt*",
    Kind.NUDGE: ":hourglass: *Compaction nudge*",
    Kind.COMPACT: ":broom: *Compaction*",
    Kind.TASK: ":clipboard: *Task*",
    Kind.STEER: ":keyboard: *Sent with agentbridge send*",
    Kind.CONTINUE: ":arrow_forward: *Continued after the usage limit*",
}
TYPED = ":keyboard: *Typed in the terminal*"


@dataclass(frozen=True, slots=True)
class Route:
    thread: str | None = None
    skip: bool = False
    header: str | None = None


class Router(Protocol):
    def route(self, slug: str, event: Event) -> Route: ...


class TurnRouter:
    def __init__(self) -> None:
        self._origins: dict[str, list[tuple[str, QueueItem]]] = {}
        self._thread: dict[str, str | None] = {}

    def origin(self, slug: str, item: QueueItem) -> None:
        """A delivered prompt was confirmed by the runtime: remember where it came from."""
        pending = self._origins.setdefault(slug, [])
        pending.append((normalized(item.source.get("pasted", item.text)), item))
        del pending[:-20]

    def thread_of(self, slug: str) -> str | None:
        return self._thread.get(slug)

    def _pop(self, slug: str, text: str) -> QueueItem | None:
        wanted = normalized(text)
        pending = self._origins.get(slug, [])
        for i, (pasted, item) in enumerate(pending):
            if echoes(pasted, wanted):
                del pending[i]
                return item
        return None

    def route(self, slug: str, event: Event) -> Route:
        if event.kind is not EventKind.USER_PROMPT:
            return Route(thread=self._thread.get(slug))
        item = self._pop(slug, event.text)
        if item is None:
            self._thread[slug] = None
            return Route(header=TYPED)
        slack_ts = item.source.get("thread_ts") or item.source.get("ts")
        if item.source.get("via") == "slack" and isinstance(slack_ts, str):
            self._thread[slug] = slack_ts
            return Route(skip=True)  # echo suppression: the person sees their own message
        self._thread[slug] = None
        if item.source.get("via") == "command":
            return Route(header=":speech_balloon: *Sent with /agent send*")
        return Route(header=HEADERS.get(item.kind))
