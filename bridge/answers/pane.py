"""The pane fallback: a question no hook answers is read off the screen and answered by keys.

When (the trigger): the agent has an unanswered question tool call in its transcript, or is
``waiting_input`` (Claude's ``permission_prompt`` notification), and no blocking hook has
claimed the question (the tracker has no ``waiting_for``); then every
``answers.pane_after_seconds`` (default 3 s) the pane is captured and the runtime asked
whether a picker is drawn. A working hook holds the CLI *before* it draws its picker, so with
hooks in order no picker is ever seen and this never fires. It does fire for a hook that
failed (exit non-zero, could not reach the runner) and under ``answers: {via: pane}``, which
leaves the question hook out of the launch.

What: the question (from the transcript's tool call when seen, which has every question
exactly; else the one the screen shows) goes through the same asks row and Block Kit message
as a hook question, keyed by the tool_use_id, so the click is stored before it is typed and a
runner restart neither loses nor repeats it (an answered-but-undelivered row is typed by the
next runner once it sees the picker). The keys go through the pane's lock (``send_key`` one at
a time, each once the screen shows the one before, free text through the literal paste); the
row is marked delivered only when the transcript shows that tool call's result. No result
within :data:`CONFIRM_S`: the thread is told, and the row stays answered (never typed twice).
A refusal by the timeout policy presses Escape (the picker's cancel).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from bridge.aio import TaskSet
from bridge.answers.book import AskRow
from bridge.answers.service import Answers
from bridge.lifecycle.activity import Activity
from bridge.lifecycle.steer import sanitize
from runtimes import Runtime, get_runtime
from runtimes.asks import Answer, Ask
from runtimes.claude_screen import Picker
from runtimes.events import Event, EventKind

log = logging.getLogger("agentbridge.answers.pane")

CONFIRM_S = 60.0
"""How long after the keys the transcript must show the tool result."""
SCREEN_S = 10.0
"""How long to wait for the picker of the next question (several in one call)."""
KEY_S = 2.0
"""The longest wait for one key of an answer to show on screen before the next is sent."""


class KeyPane(Protocol):
    """What of :class:`bridge.fleet.tmux.AgentPane` the fallback uses (its per-pane lock)."""

    def capture(self) -> str: ...

    def send_key(self, key: str, *, settle: float = ...) -> None: ...

    def paste(self, text: str, *, submit: bool = ..., settle: float = ...) -> object: ...


class PaneFallback:
    def __init__(self, answers: Answers, pane_of: Callable[[str], KeyPane]) -> None:
        self.answers = answers
        self.pane_of = pane_of
        self.calls: dict[str, Ask] = {}
        """Per agent: its question tool call with no result yet (from the transcript)."""
        self._results: OrderedDict[str, asyncio.Event] = OrderedDict()
        self._any_result: dict[str, asyncio.Event] = {}
        self._watchers: dict[str, asyncio.Task[Any]] = {}
        self._tasks = TaskSet()

    # -- signals ----------------------------------------------------------------------------

    def on_event(self, slug: str, event: Event) -> None:
        """Transcript events: a question tool call starts a watch; its result confirms."""
        if event.kind is EventKind.TOOL_CALL and event.call_id and event.tool:
            runtime = self._runtime(slug)
            payload = {
                "tool_name": event.tool,
                "tool_input": event.tool_input or {},
                "tool_use_id": event.call_id,
            }
            ask = runtime.parse_ask("PreToolUse", payload) if runtime else None
            if ask is not None and ask.kind == "question":
                self.calls[slug] = ask
                self._watch(slug)
        elif event.kind is EventKind.TURN_END:
            self.calls.pop(slug, None)  # a turn that ended waits for nothing (an interrupt)
        elif event.kind is EventKind.TOOL_RESULT and event.call_id:
            call = self.calls.get(slug)
            if call is not None and call.key == event.call_id:
                del self.calls[slug]
            self._result(event.call_id).set()
            self._any_result.setdefault(slug, asyncio.Event()).set()

    def activity(self, slug: str, old: Activity, new: Activity) -> None:
        if new is Activity.WAITING_INPUT:
            self._watch(slug)

    def _result(self, call_id: str) -> asyncio.Event:
        found = self._results.get(call_id)
        if found is None:
            found = self._results[call_id] = asyncio.Event()
            while len(self._results) > 256:
                self._results.popitem(last=False)
        return found

    def _runtime(self, slug: str) -> Runtime | None:
        agent = self.answers.config.agent(slug)
        return get_runtime(agent.runtime) if agent else None

    def _watch(self, slug: str) -> None:
        task = self._watchers.get(slug)
        if task is None or task.done():
            self._watchers[slug] = self._tasks.spawn(self._run(slug))

    # -- the watch ---------------------------------------------------------------------------

    def _unclaimed(self, slug: str) -> bool:
        """A question may be on screen that no hook holds."""
        agent = self.answers.tracker.get(slug)
        waiting = agent.state is Activity.WAITING_INPUT or (
            slug in self.calls and agent.state is Activity.WORKING
        )
        return waiting and agent.waiting_for is None and not self.answers.closing

    async def _run(self, slug: str) -> None:
        agent = self.answers.config.agent(slug)
        runtime = self._runtime(slug)
        if agent is None or runtime is None or self.answers.backend.name != "slack":
            return  # the console has no buttons: the picker stays for the terminal
        pane = self.pane_of(slug)
        while True:
            await asyncio.sleep(agent.answers.pane_after_seconds)
            if not self._unclaimed(slug):
                return
            try:
                screen = await asyncio.to_thread(pane.capture)
            except Exception as err:  # the session went away: the reconciler's business
                log.info("%s: no pane to read a question from: %s", slug, err)
                return
            picker = runtime.parse_picker(screen)
            if picker is not None:
                await self._relay(slug, runtime, pane, picker)
                return

    async def _relay(self, slug: str, runtime: Runtime, pane: KeyPane, picker: Picker) -> None:
        ask = self.calls.get(slug) or Ask(
            "question",
            "pane:" + _digest(slug, picker.question, int(time.time() // 3600)),
            "pane",
            questions=(picker.as_question(),),
        )
        log.info(
            "%s: a question on screen and no hook for it (%s%s, %d options): answering by keys",
            slug,
            "multi-select " if picker.multi else "",
            picker.header or "no header",
            len(picker.options),
        )
        book = self.answers.book
        row, _ = await asyncio.to_thread(book.open_or_create, slug, ask)
        if row.status == "delivered":
            return
        answer = row.answer
        if answer is None:
            row, waiter = await self.answers.posted_waiter(row)
            answer = await asyncio.shield(waiter)
        self._any_result.setdefault(slug, asyncio.Event()).clear()
        typed = await self._type(row, runtime, pane, answer)
        if not typed:
            await self.answers.say(
                row,
                f":warning: Could not type this answer into {slug}'s picker; "
                "answer it in the terminal (tmux).",
            )
            return
        if await self._confirmed(slug, row.ask.key):
            await self.answers.delivered(row, answer)
        else:
            log.warning("%s: #%d typed, no tool result in the transcript", slug, row.id)
            await self.answers.say(
                row,
                f":warning: The answer was typed into {slug}'s picker, but its transcript did "
                f"not show it taken within {CONFIRM_S:.0f} s; check the terminal (tmux).",
            )

    async def _type(self, row: AskRow, runtime: Runtime, pane: KeyPane, answer: Answer) -> bool:
        if answer.verdict != "answers":
            await asyncio.to_thread(pane.send_key, "Escape")  # the picker's own cancel
            return True
        for question in row.ask.questions:
            value = answer.answers.get(question.text)
            picker = await self._picker_for(runtime, pane, question.text)
            keys = runtime.picker_keys(picker, value) if picker and value is not None else ()
            if not keys:
                return False
            # Each key waits (under the pane's lock) for the screen to show it taken: keys that
            # reach a busy CLI in one read arrive as one input ("13", not "1" then "3"), which
            # a picker ignores.
            for kind, key in keys:
                if kind == "text":
                    text = sanitize(key).text.replace("\n", " ")
                    await asyncio.to_thread(pane.paste, text, submit=False, settle=KEY_S)
                else:
                    await asyncio.to_thread(pane.send_key, key, settle=KEY_S)
        return True

    async def _picker_for(self, runtime: Runtime, pane: KeyPane, text: str) -> Picker | None:
        """The picker showing the question ``text`` (the next tab of a multi-question call)."""
        deadline = time.monotonic() + SCREEN_S
        first: Picker | None = None
        while time.monotonic() < deadline:
            picker = runtime.parse_picker(await asyncio.to_thread(pane.capture))
            first = first or picker
            if picker is not None and _same(picker.question, text):
                return picker
            await asyncio.sleep(0.2)
        return first  # a question drawn differently from the tool input: trust the screen

    async def _confirmed(self, slug: str, key: str) -> bool:
        event = self._result(key) if not key.startswith("pane:") else self._any_result[slug]
        try:
            await asyncio.wait_for(event.wait(), CONFIRM_S)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        for task in list(self._watchers.values()):
            task.cancel()


def _same(screen: str, text: str) -> bool:
    """The screen wraps and may trim a long question: compare without whitespace."""
    a, b = "".join(screen.split()), "".join(text.split())
    return bool(a) and (a == b or b.startswith(a) or a.startswith(b))


def _digest(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]
