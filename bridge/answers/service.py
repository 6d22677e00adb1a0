"""Answering agents from chat: the blocking hook's side and the click's side, on the event loop.

The hook side (:meth:`Answers.hook`, the hook server's blocking handler): parse what the
agent asks (the runtime knows its CLI's payloads), find or create its durable row by key,
post the Block Kit message in the turn's thread (once per row), mark the agent
``waiting_input`` with the message's link, then wait. A row answered already (the runner
restarted after the click) is handed over at once.

The click side (:meth:`Answers.on_action`, chained into ``ChatBackend.on_action`` for
``q:`` action ids): only people allowed to steer the agent may answer (others get a private
refusal, audited, and nothing changes); the answer is committed to the database *before*
the waiting hook is woken, then the message is rewritten to say who chose what, without buttons.

Waiting is bounded by the agent's ``answers`` policy (:mod:`bridge.answers.policy`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bridge.aio import TaskSet
from bridge.answers.blocks import Click, modal, parse_action
from bridge.answers.book import AskBook, AskRow
from bridge.answers.choice import (
    Choice,
    Chosen,
    OpenForm,
    Partial,
    approval_choice,
    question_choice,
)
from bridge.answers.failclosed import denied
from bridge.answers.message import AskMessages
from bridge.answers.policy import run_policy
from bridge.chat.protocol import Action, ChatBackend
from bridge.config import access
from bridge.config.model import Config
from bridge.hooks.server import HookMessage
from bridge.lifecycle.activity import Activity, ActivityTracker
from bridge.store.db import Store
from bridge.store.queue import QueueItem
from runtimes import get_runtime
from runtimes.asks import APPROVAL_EVENT, Answer, Ask, ask_output

log = logging.getLogger("agentbridge.answers")

POLL_S = 1.0
"""With a shared store, how often a waiting ask looks for an answer another runner committed."""


class Answers:
    def __init__(
        self,
        config: Config,
        store: Store,
        backend: ChatBackend,
        tracker: ActivityTracker,
        thread_of: Callable[[str], str | None],
    ) -> None:
        self.config = config
        self.book = AskBook(store)
        self.backend = backend
        self.tracker = tracker
        self.thread_of = thread_of
        self.messages = AskMessages(
            self.book, backend, lambda slug: self.config.channel_of(slug), self.thread
        )
        self.closing = False
        self._waiters: dict[int, asyncio.Future[Answer]] = {}
        self._watchers: dict[int, asyncio.Task[Any]] = {}
        self._pollers: dict[int, asyncio.Task[Any]] = {}
        """With a shared store: per waiting ask, the task that wakes it on an answer committed
        by another runner (:meth:`_poll`)."""
        self._tasks = TaskSet()
        self._threads: dict[str, str | None] = {}
        self._clicks: dict[int, asyncio.Lock] = {}
        self._forms: set[tuple[int, str]] = set()
        """(ask id, user) of the forms opened from a click in the agent's channel."""

    # -- where the turn is ----------------------------------------------------------------

    def confirmed(self, item: QueueItem) -> None:
        """The runtime took a prompt (its UserPromptSubmit hook, before any tool hook): a turn
        started from Slack is asked about in that message's thread."""
        ts = item.source.get("thread_ts") or item.source.get("ts")
        slack = item.source.get("via") == "slack" and isinstance(ts, str)
        self._threads[item.slug] = str(ts) if slack else None

    def pasted(self, item: QueueItem, _outcome: str) -> None:
        """A prompt was pasted (the deliverer's listener, after the turn it starts began): its
        thread is the turn's until the runtime confirms it. The CLI's blocking question hook
        can reach the runner before the relay hook that confirms the prompt, and a question
        asked then belongs in the thread all the same."""
        if self._threads.get(item.slug) is None:
            self.confirmed(item)

    def activity(self, slug: str, old: Activity, new: Activity) -> None:
        """A new turn forgets the last one's thread (a typed prompt's questions go top-level)."""
        if new is Activity.WORKING and old in (Activity.IDLE, Activity.STARTING):
            self._threads[slug] = None

    def thread(self, slug: str) -> str | None:
        """The turn's thread: known from the confirmed prompt, else the mirror's routing."""
        return self._threads[slug] if slug in self._threads else self.thread_of(slug)

    def update_config(self, config: Config) -> None:
        self.config = config

    def install(self) -> None:
        """Take the backend's ``q:`` actions; pass every other action to whoever had them."""
        previous = self.backend.on_action

        async def route(action: Action) -> str | None:
            if parse_action(action.action_id) is not None:
                return await self.on_action(action)
            return await previous(action) if previous is not None else None

        self.backend.on_action = route

    def form_owner(self, action: Action) -> str | None:
        """The agent a modal submission of ours answers for (its ask's slug), so a runner
        that Slack handed it to can route it to that agent's host. Synchronous (a store
        read): called in a worker thread."""
        click = parse_action(action.action_id)
        if click is None:
            return None
        row = self.book.get(click.ask_id)
        return row.slug if row is not None else None

    # -- the hook side --------------------------------------------------------------------

    async def hook(self, msg: HookMessage) -> dict[str, Any]:
        """The blocking hook's reply: ``{"output": <the CLI's hook stdout>}``, or ``{}`` to let
        the CLI decide as it would without us (the console, which has no buttons).

        An approval fails closed: a payload that cannot be read as one, an unknown agent, or
        any error on the way (the database, the chat) denies the call, and the channel is told
        when it can be. An empty reply would make the CLI draw its own permission dialog in a
        pane nobody watches, which the pane fallback never answers. A question that cannot be
        relayed is left to the CLI's picker, which the pane fallback reads and relays."""
        if self.backend.name != "slack":
            # The console has no buttons: let the CLI show its own picker or prompt in the pane
            # (the blocking hook runs before it, so waiting here would hide it).
            return {}
        agent = self.config.agent(msg.slug)
        try:
            if agent is None:
                raise LookupError(f"{msg.slug} is not an agent of this runner's configuration")
            if "oversize" in msg.payload:
                raise ValueError(
                    f"the request is too large to relay ({msg.payload['oversize']} bytes)"
                )
            ask = get_runtime(agent.runtime).parse_ask(msg.event, msg.payload)
            if ask is None:
                raise ValueError(f"the {msg.event} hook's payload is not a question or approval")
            if ask.kind == "approval" and agent.permissions != "ask":
                return {}  # nothing to relay: the CLI decides as it would without us
            return await self._ask(msg.slug, replace(ask, request_id=msg.request_id))
        except asyncio.CancelledError:
            raise
        except Exception as err:
            if msg.event != APPROVAL_EVENT:  # a question: Claude draws its picker, relayed
                log.exception(
                    "%s: relaying a %s hook failed; left to the picker", msg.slug, msg.event
                )
                return {}
            log.exception("%s: answering a %s hook failed; denied", msg.slug, msg.event)
            return self._failed(msg, err)

    async def _ask(self, slug: str, ask: Ask) -> dict[str, Any]:
        row, created = await asyncio.to_thread(self.book.open_or_create, slug, ask)
        if created:
            log.info("%s: %s #%d asked (%s)", slug, ask.kind, row.id, ask.key)
        if row.answer is not None:
            return await self._hand_over(row, row.answer)
        try:
            row, waiter = await self.posted_waiter(row)
            answer = await asyncio.shield(waiter)
        except asyncio.CancelledError:
            if not self.closing:  # the CLI stopped waiting (interrupt, terminal answer, timeout)
                self._tasks.spawn(self._abandon(row))
            raise
        except Exception:  # the hook is denied (the caller): the row waits for nobody now
            self._tasks.spawn(self._abandon(row))
            raise
        return await self._hand_over(row, answer)

    def _failed(self, msg: HookMessage, err: Exception) -> dict[str, Any]:
        """Deny the hooked call and tell the channel (in the background, best effort)."""
        output, note = denied(msg.slug, msg.event, msg.payload, err)
        self._tasks.spawn(self.messages.note(msg.slug, note))
        return {"output": output}

    async def posted_waiter(self, row: AskRow) -> tuple[AskRow, asyncio.Future[Answer]]:
        """Post an open row's message (once), mark the agent waiting, start its no-answer
        policy; the future the click (or the policy) resolves. Shared by the hook and the
        pane fallback (:mod:`bridge.answers.pane`)."""
        waiter = self._waiters.get(row.id)
        if waiter is None or waiter.done():
            waiter = self._waiters[row.id] = asyncio.get_running_loop().create_future()
        if not row.link:
            self.tracker.asking(row.slug, row.kind, None)  # the link follows once posted
        row = await self.messages.ensure_posted(row)
        self.tracker.asking(row.slug, row.kind, row.link)
        agent = self.config.agent(row.slug)
        if row.id not in self._watchers and agent is not None:
            self._watchers[row.id] = self._tasks.spawn(run_policy(self, row, agent.answers, waiter))
        if self.book.store.shared and row.id not in self._pollers:
            self._pollers[row.id] = self._tasks.spawn(self._poll(row.id, waiter))
        return row, waiter

    async def _poll(self, ask_id: int, waiter: asyncio.Future[Answer]) -> None:
        """With several hosts, an answer may be committed by another runner (one that Slack
        handed the click or the form to, before routing took it, or after a reload): the
        answer row is the truth, so the waiting hook is woken by it too, not only by this
        runner's own clicks."""
        while not waiter.done():
            await asyncio.sleep(POLL_S)
            try:
                row = await asyncio.to_thread(self.book.get, ask_id)
            except Exception as err:  # the store is away: look again
                log.debug("answers: could not look at #%d: %s", ask_id, err)
                continue
            if row is not None and row.answer is not None and not waiter.done():
                log.info("%s: %s #%d answered on another host", row.slug, row.kind, row.id)
                waiter.set_result(row.answer)

    async def delivered(self, row: AskRow, answer: Answer) -> None:
        """The answer reached the agent some other way than a hook (typed into its pane)."""
        await asyncio.to_thread(self.book.delivered, row.id)
        self._forget(row.id)
        self.tracker.answered(row.slug)
        log.info("%s: %s #%d answered by keys (%s)", row.slug, row.kind, row.id, answer.verdict)

    async def _hand_over(self, row: AskRow, answer: Answer) -> dict[str, Any]:
        await asyncio.to_thread(self.book.delivered, row.id)
        self._forget(row.id)
        self.tracker.answered(row.slug)
        log.info("%s: %s #%d answered (%s)", row.slug, row.kind, row.id, answer.verdict)
        return {"output": ask_output(row.ask, answer)}

    def _forget(self, ask_id: int) -> None:
        self._waiters.pop(ask_id, None)
        self.messages.forget(ask_id)
        self._clicks.pop(ask_id, None)
        watcher = self._watchers.pop(ask_id, None)
        if watcher is not None and watcher is not asyncio.current_task():
            watcher.cancel()
        poller = self._pollers.pop(ask_id, None)
        if poller is not None and poller is not asyncio.current_task():
            poller.cancel()

    async def _abandon(self, row: AskRow) -> None:
        self._forget(row.id)
        try:
            abandoned = await asyncio.to_thread(self.book.abandon, row.id)
        except Exception as err:  # the store is down: the row stays open, the hook is gone
            log.warning("%s: could not mark #%d abandoned: %s", row.slug, row.id, err)
            return
        if abandoned:
            self.tracker.answered(row.slug)
            await self.messages.close(
                row,
                ":heavy_minus_sign: No longer waiting: answered in the terminal, "
                "interrupted, or the agent's hook timed out.",
            )

    # -- the click side ----------------------------------------------------------------------

    async def on_action(self, action: Action) -> str | None:
        click = parse_action(action.action_id)
        if click is None:
            return None
        # One click at a time per ask: a checkbox tick and the Submit right after it arrive as
        # two envelopes handled concurrently; the Submit must see the tick.
        async with self._clicks.setdefault(click.ask_id, asyncio.Lock()):
            return await self._click(click, action)

    async def _click(self, click: Click, action: Action) -> str | None:
        row = await asyncio.to_thread(self.book.get, click.ask_id)
        if row is None:
            return "That question is no longer known to agentbridge."
        agent = self.config.agent(row.slug)
        where = access.Where.CHANNEL if self._in_channel(row, action) else access.Where.OTHER
        if agent is None or not access.authorize(
            self.config, agent, action.user, access.Act.ANSWER, where
        ):
            await asyncio.to_thread(
                self.book.audit, row.id, row.slug, action.user, "refused", action.action_id
            )
            log.warning("%s: %s may not answer #%d", row.slug, action.user, row.id)
            return f"Only people allowed to steer {row.slug} can answer it; nothing was sent."
        if row.status != "open":
            who = f" by <@{row.answered_by}>" if row.answered_by not in (None, "policy") else ""
            return f"This was answered already{who}."
        meaning = approval_choice if row.kind == "approval" else question_choice
        return await self._act(row, meaning(row, click, action), action)

    def _in_channel(self, row: AskRow, action: Action) -> bool:
        """The click is on the message in the agent's channel, or in the form that a click
        there opened for this same person (Slack sends modal submissions without a channel)."""
        if not action.channel:
            return (row.id, action.user) in self._forms
        wanted = row.channel or self.config.channel_of(row.slug)
        return action.channel in (wanted, self.backend.channels.get(wanted))

    async def _act(self, row: AskRow, choice: Choice, action: Action) -> str | None:
        """Do what the click means (:mod:`bridge.answers.choice`)."""
        if isinstance(choice, OpenForm):
            return await self._open_modal(
                action, row, choice.form, choice.question, choice.title, choice.label
            )
        if isinstance(choice, Partial):
            await asyncio.to_thread(self.book.set_partial, row.id, choice.partial)
            return None
        if isinstance(choice, Chosen):
            return await self.finish(row, choice.answer, action.user, choice.said, at=action)
        return choice

    async def _open_modal(
        self, action: Action, row: AskRow, form: str, question: int, title: str, label: str
    ) -> str | None:
        if not action.trigger_id:
            return "This chat cannot open a form here; pick one of the buttons."
        view = modal(f"q:{row.id}:{form}:{question}", title, label, str(row.id), form == "denyform")
        await self.backend.open_view(action.trigger_id, view)
        self._forms.add((row.id, action.user))
        return None

    async def finish(
        self,
        row: AskRow,
        answer: Answer,
        user: str,
        said: str,
        then: str | None = None,
        at: Action | None = None,
    ) -> str | None:
        """Commit ``answer`` (first one wins), wake the waiting hook, rewrite the message.

        The rewrite runs in the background (a click's acknowledgement must not wait on Slack's
        pacing); ``then`` is a thread note posted after it, so whoever reads the note finds the
        buttons already gone. ``at`` is the click that answered: its message is the one to
        rewrite even when the row does not know its message yet (a runner killed between the
        post and recording it, and the next one still looking).
        """
        if not await asyncio.to_thread(self.book.answer, row.id, answer, user, said):
            return "This was answered already."
        waiter = self._waiters.get(row.id)
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)
        who = "agentbridge" if user == "policy" else f"<@{user}>"
        mark = ":no_entry:" if answer.verdict in ("deny", "refuse") else ":white_check_mark:"
        where = (at.channel, at.message_ref) if at and at.channel and at.message_ref else None
        self._tasks.spawn(self._close_then_say(row, f"{mark} {who} {said}", then, where))
        return None

    async def _close_then_say(
        self, row: AskRow, outcome: str, then: str | None, at: tuple[str, str] | None
    ) -> None:
        await self.messages.close(row, outcome, at)
        if then is not None:
            await self.messages.say(row, then)

    async def say(self, row: AskRow, text: str) -> None:
        """A short note in the ask's thread (reminders, timeouts)."""
        await self.messages.say(row, text)

    async def close(self) -> None:
        self.closing = True
        for task in [*self._watchers.values(), *self._pollers.values()]:
            task.cancel()


__all__ = ["Answers", "Ask"]
