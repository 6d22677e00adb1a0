"""Inbound routing between runners that share one Slack app and one Postgres.

Slack hands each Socket Mode event to one of the app's open connections, so a message for an
agent on host A may reach host B's runner. :class:`RoutedBackend` wraps the chat backend:

- An event for one of this runner's own agents (or for no agent) goes to the channel side
  exactly as on a single box: ``Inbound.handle`` commits the prompt row, deduplicated by
  channel and ``ts``, before the event is acknowledged.
- An event for another host's agent is committed to ``inbound_events`` (``INSERT ... ON
  CONFLICT DO NOTHING`` on its event id, so a redelivery is a no-op wherever it lands) plus a
  ``NOTIFY inbound_<host>`` in the same transaction; only then is it acknowledged.
- Each runner drains its own rows: woken by ``LISTEN`` and by a poll (a notification is lost
  while a runner is disconnected), it claims one row at a time with ``FOR UPDATE SKIP
  LOCKED`` and, with that transaction still open, hands the event to the same channel-side
  code. Its ``enqueue`` joins the transaction (:meth:`bridge.store.pg.PgStore.join`), which
  then marks the row done and commits: a crash leaves either the row to drain again or the
  prompt queued, never both or neither. A routed message carries a receipt like one from
  Slack: the row is done only once the consumer kept it (queued its prompt, or deliberately
  ignored or refused it); an error in its handling refuses the receipt, and the attempt rolls
  back like a failed statement does. A failed row is drained again after a backoff; after
  :data:`~bridge.cluster.rows.MAX_ATTEMPTS` it is closed as failed and its sender is told in
  the message's thread (a poison row must not block the others, nor vanish silently).
- ``/agent`` commands naming another host's agent (``/agent review``: its template's host),
  clicks on another host's agent's messages and modal submissions for another host's agent's
  question (Slack sends those without a channel; :attr:`RoutedBackend.form_owner` names the
  agent) travel the same way; the receiving runner waits for the owner's reply (the row's
  ``outcome``) and answers the person. A command for a host that is down is refused at once
  instead of waiting (a stale ``restart`` hours later would surprise).

Files shared with a routed message travel as their id, name, size and download address; the
owner's backend fetches them with its own token (:meth:`ChatBackend.attachment`), so the agent
gets the same inbox files as on a single box.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

from bridge.aio import wait_event
from bridge.chat.delegate import DelegatingBackend
from bridge.chat.protocol import (
    Action,
    ChatBackend,
    Incoming,
    NotKept,
    Outgoing,
    Receipt,
)
from bridge.cluster.rows import (
    BACKOFF_S,
    MAX_ATTEMPTS,
    EventRows,
    listen,
    payload_of,
    rebuild,
)
from bridge.config.model import AgentConfig, Config
from bridge.store.hosts import HostBook
from bridge.store.pg import PgStore
from bridge.store.recipient import recipient
from bridge.store.retry import in_thread_retrying

log = logging.getLogger("agentbridge.cluster")

_AGENT_VERBS = ("restart", "stop", "compact", "send")


class RoutedBackend(DelegatingBackend):
    """A :class:`ChatBackend` whose inbound side is shared fleet-wide (see the module doc).
    Everything else is the wrapped backend's. Owned by the runner's event loop."""

    def __init__(
        self,
        inner: ChatBackend,
        store: PgStore,
        host: str,
        config: Config,
        *,
        poll_s: float = 2.0,
        reply_wait_s: float = 20.0,
        backoff_s: float = BACKOFF_S,
    ) -> None:
        super().__init__(inner)
        self._store = store
        self._host = host
        self._config = config
        self._poll_s = poll_s
        self._reply_wait_s = reply_wait_s
        self._hosts = HostBook(store)
        self._local: deque[Incoming] = deque()
        self._wake = asyncio.Event()
        self._stopping = threading.Event()
        self._rows = EventRows(store, host, backoff_s=backoff_s)
        self.command_owners: dict[str, Callable[[str, str], AgentConfig | None]] = {}
        """``/agent`` verbs (besides the agent verbs) whose agent the app resolves: verb ->
        (channel, the rest of the text) -> the agent it acts on, or None (handled here)."""
        self.form_owner: Callable[[Action], str | None] | None = None
        """The agent (slug) a modal submission is for (Slack sends it without a channel);
        synchronous (it may read the store), called in a worker thread."""

    def update_config(self, config: Config) -> None:
        self._config = config

    async def close(self) -> None:
        self._stopping.set()
        await self._inner.close()

    def agent_of(self, channel: str, thread: str | None) -> AgentConfig | None:
        """The agent an event in ``channel`` (in ``thread``, or on the message ``thread``) is
        for; None (handled here, where the inbound side refuses or ignores it) when unclear.
        It reads the store (a thread's owner): called in a worker thread, never on the loop."""
        return recipient(self._config, self._store, channel, thread, self._inner.channels).agent

    def _remote_host(self, agent: AgentConfig | None) -> str | None:
        """The other host that owns ``agent``; None when it is ours (or nobody's)."""
        if agent is None or agent.host is None or agent.host == self._host:
            return None
        return agent.host

    # -- receiving side ----------------------------------------------------------------------

    async def _pump(self) -> None:
        async for msg in self._inner.receive():
            try:
                await self._take(msg)
            except Exception as err:  # not a store error (those are waited out): not kept
                log.warning("route: could not keep message %s in %s: %s", msg.ref, msg.channel, err)
                if msg.receipt is not None:  # Slack delivers it again
                    msg.receipt.refuse(NotKept(f"not kept for routing: {err}"))

    async def _take(self, msg: Incoming) -> None:
        """Pass ``msg`` on to this runner's channel side, or commit it for its agent's host.

        The database away: held (not acked) and retried until it is back, so the message is
        kept even when the outage outlasts Slack's redeliveries (a redelivered copy is a
        no-op)."""
        agent = await in_thread_retrying(
            partial(self.agent_of, msg.channel, msg.thread), "routing a message"
        )
        target = self._remote_host(agent)
        if target is None:
            self._local.append(msg)
            self._wake.set()
            return
        event_id = msg.event_id or f"msg:{msg.channel}:{msg.ref}"
        offer = partial(
            self._rows.offer, "message", event_id, msg.channel, msg.ref, payload_of(msg), target
        )
        fresh = await in_thread_retrying(offer, "keeping a routed message")
        if msg.receipt is not None:
            msg.receipt.keep()  # committed: Slack may have its ack now
        log.info(
            "route: message %s in %s for host %s%s",
            msg.ref,
            msg.channel,
            target,
            "" if fresh else " (again; already kept)",
        )

    async def _ask(
        self, kind: str, channel: str, payload: dict[str, Any], target: str, what: str
    ) -> str | None:
        """Route a command or click to ``target`` and wait for its reply."""
        row = next(
            (h for h in await asyncio.to_thread(self._hosts.hosts) if h.host == target), None
        )
        timeout = self._config.host_down_after_seconds
        if row is None or row.age() > timeout:
            seen = "never been seen" if row is None else f"been silent for {row.age():.0f} s"
            return f"{what} runs on host `{target}`, which has {seen}; try again when it is back."
        event_id = f"{kind}:{uuid.uuid4()}"
        try:
            await asyncio.to_thread(
                self._rows.offer, kind, event_id, channel, None, payload, target
            )
        except Exception as err:  # not committed: nothing will run; the person may try again
            log.warning("route: could not pass a %s to host %s: %s", kind, target, err)
            return f"Could not pass this to host `{target}` (database error); nothing was done."
        deadline = time.monotonic() + self._reply_wait_s
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # a failed look is looked again
                rows = await asyncio.to_thread(
                    self._store.query,
                    "SELECT done_at, outcome FROM inbound_events WHERE event_id = ?",
                    (event_id,),
                )
                if rows and rows[0][0] is not None:
                    return str(rows[0][1] or "") or None
            await asyncio.sleep(0.1)
        return f"Sent to host `{target}`, which has not answered yet; it runs when it does."

    async def _handle_command(self, user: str, channel: str, text: str) -> str:
        """An ``/agent`` verb: run here, or on the host of the agent it acts on."""
        if self._command is None:
            return await super()._handle_command(user, channel, text)
        words = text.strip().split(None, 2)
        agent = None
        verb = words[0].lower() if words else ""
        if len(words) >= 2 and verb in _AGENT_VERBS:
            agent = self._config.agent(words[1])
        elif verb in self.command_owners:  # e.g. review: the template's host runs it
            rest = text.strip()[len(words[0]) :].strip()
            agent = self.command_owners[verb](channel, rest)
        target = self._remote_host(agent)
        if target is None or agent is None:
            return await super()._handle_command(user, channel, text)
        payload = {"user": user, "channel": channel, "text": text}
        reply = await self._ask("command", channel, payload, target, f"`{agent.slug}`")
        return reply or ""

    async def _handle_action(self, action: Action) -> str | None:
        """A click or form: handled here, or on the host of the agent it is for."""
        if self._action is None:
            return None
        if action.channel:
            ref = action.message_ref or None
            agent = await asyncio.to_thread(self.agent_of, action.channel, ref)
        else:  # a modal submission: no channel; the form's feature knows whose it is
            slug = await asyncio.to_thread(self.form_owner, action) if self.form_owner else None
            agent = self._config.agent(slug) if slug else None
        target = self._remote_host(agent)
        if target is None:
            return await super()._handle_action(action)
        return await self._ask("action", action.channel, payload_of(action), target, "This")

    # -- owning side -------------------------------------------------------------------------

    def _too_old(self, received_at: float) -> bool:
        limit = self._config.routed_max_wait_minutes
        return limit is not None and time.time() - received_at > limit * 60

    async def _not_delivered(self, msg: Incoming, why: str, key: str) -> None:
        """Tell the sender, in the message's thread, that it did not reach its agent."""
        agent = await asyncio.to_thread(self.agent_of, msg.channel, msg.thread)
        name = f"`{agent.slug}`" if agent else "its agent"
        text = f":warning: Not delivered to {name}: {why}. Send it again if it still applies."
        event_id = f"{key}:{msg.channel}:{msg.ref}"
        await self._inner.post(Outgoing("", msg.channel, text, event_id, msg.thread or msg.ref))

    async def _expired(self, msg: Incoming) -> None:
        limit = self._config.routed_max_wait_minutes or 0
        why = f"its host `{self._host}` was away for longer than `routed_max_wait_minutes`"
        log.info("route: message %s in %s waited too long; not delivered", msg.ref, msg.channel)
        await self._not_delivered(msg, f"{why} ({limit:g} min)", "expired")

    async def _gave_up(self, kind: str, payload: dict[str, Any], error: str) -> None:
        """Tell the sender of a message that could not be queued (commands and clicks: the
        receiving runner shows the row's outcome to the person who waits for it)."""
        if kind == "message":
            why = f"host `{self._host}` failed {MAX_ATTEMPTS} times to queue it ({error})"
            await self._not_delivered(rebuild(Incoming, payload, self._inner), why, "route-failed")

    async def receive(self) -> AsyncIterator[Incoming]:
        loop = asyncio.get_running_loop()
        threading.Thread(
            target=listen,
            args=(
                self._store.url,
                self._host,
                self._stopping,
                lambda: loop.call_soon_threadsafe(self._wake.set),
            ),
            name="route-listen",
            daemon=True,
        ).start()
        pump = asyncio.create_task(self._pump(), name="route-pump")
        try:
            while True:
                if pump.done():
                    pump.result()
                    return  # the backend's stream ended
                while self._local:
                    yield self._local.popleft()
                # the store away: the rows wait for it (retried with backoff until it is back)
                claim = await in_thread_retrying(self._rows.claim, "claiming a routed event")
                if claim is None:
                    await wait_event(self._wake, self._poll_s)
                    self._wake.clear()
                    continue
                kind, payload = claim.kind, claim.payload
                outcome, error = "handled", None
                try:
                    # A click or form runs outside the row's transaction: an answer it commits
                    # must be durable before the waiting hook acts on it (as on a single box);
                    # run again after a failed attempt, it is refused as answered already.
                    joined = (
                        contextlib.nullcontext()
                        if kind == "action"
                        else self._store.join(claim.conn)
                    )
                    with joined:
                        if kind == "message" and self._too_old(claim.received_at):
                            outcome = "expired"  # the sender is told once the row is done
                        elif kind == "message":
                            # Done only once the consumer kept it (its prompt queued in this
                            # transaction, or deliberately ignored): an error in the consumer's
                            # handling refuses the receipt, and the row is drained again.
                            receipt = Receipt(held=False)  # the drain retries it
                            msg = dataclasses.replace(
                                rebuild(Incoming, payload, self._inner), receipt=receipt
                            )
                            yield msg
                            if not receipt.kept:
                                error = receipt.why or "not taken"
                        elif kind == "command" and self._command is not None:
                            outcome = await self._command(
                                str(payload["user"]), str(payload["channel"]), str(payload["text"])
                            )
                        elif kind == "action" and self._action is not None:
                            outcome = (
                                await self._action(rebuild(Action, payload, self._inner)) or ""
                            )
                except Exception as err:
                    log.exception("route: %s %s failed", kind, claim.event_id)
                    error = str(err) or type(err).__name__
                except BaseException:
                    await asyncio.to_thread(self._rows.abort, claim)  # drained again later
                    raise
                if error is not None:
                    outcome = (
                        "failed"
                        if kind == "message"
                        else f"Host `{self._host}` could not do this ({error}); nothing was done."
                    )
                settled = await asyncio.to_thread(self._rows.finish, claim, outcome, error)
                log.info("route: %s %s drained (%s)", kind, claim.event_id, settled)
                if settled == "done" and outcome == "expired" and error is None:
                    try:  # after the commit: a retried attempt never tells twice
                        await self._expired(rebuild(Incoming, payload, self._inner))
                    except Exception as err:
                        log.warning(
                            "route: could not tell the sender of %s: %s", claim.event_id, err
                        )
                if settled == "gave up":
                    try:
                        await self._gave_up(kind, payload, error or "failed")
                    except Exception as err:
                        log.warning(
                            "route: could not tell the sender of %s: %s", claim.event_id, err
                        )
        finally:
            self._stopping.set()
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
