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
  prompt queued, never both or neither. A failed attempt rolls back; after
  :data:`MAX_ATTEMPTS` the row is closed as failed (a poison row must not block the others).
- ``/agent`` commands naming another host's agent, and clicks on another host's agent's
  messages, travel the same way; the receiving runner waits for the owner's reply (the row's
  ``outcome``) and answers the person. A command for a host that is down is refused at once
  instead of waiting (a stale ``restart`` hours later would surprise), and a modal submission
  (no channel) is handled where it lands.

Files shared with a routed message travel as their id, name, size and download address; the
owner's backend fetches them with its own token (:meth:`ChatBackend.attachment`), so the agent
gets the same inbox files as on a single box.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import ExitStack
from functools import partial
from typing import Any

import psycopg
from psycopg import sql

from bridge.aio import wait_event
from bridge.chat.delegate import DelegatingBackend
from bridge.chat.protocol import (
    Action,
    ActionHandler,
    ChatBackend,
    CommandHandler,
    Incoming,
    Outgoing,
)
from bridge.config.model import AgentConfig, Config
from bridge.store.hosts import HostBook
from bridge.store.pg import PgConn, PgStore
from bridge.store.recipient import recipient
from bridge.store.retry import in_thread_retrying, is_store_error

log = logging.getLogger("agentbridge.cluster")

MAX_ATTEMPTS = 5
_AGENT_VERBS = ("restart", "stop", "compact", "send")


def notify_channel(host: str) -> str:
    return f"inbound_{host}"[:63]


def _payload(value: Any) -> dict[str, Any]:
    """A dataclass's plain fields (attachments and receipts stay behind: not serialisable)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(value):
        item = getattr(value, f.name)
        if isinstance(item, str | int | float | bool | type(None)):
            out[f.name] = item
        elif f.name in ("values",):
            out[f.name] = list(item)
        elif f.name == "form":
            out[f.name] = dict(item)
        elif f.name == "files":  # what the owner's backend needs to fetch them itself
            out[f.name] = [
                {"file_id": a.file_id, "name": a.name, "size": a.size, "source": a.source}
                for a in item
            ]
    return out


def _rebuild(cls: type[Any], data: dict[str, Any], backend: ChatBackend) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names}
    if "values" in kwargs:
        kwargs["values"] = tuple(kwargs["values"])
    if "files" in kwargs:
        kwargs["files"] = tuple(backend.attachment(**f) for f in kwargs["files"])
    return cls(**kwargs)


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
        self._command: CommandHandler | None = None
        self._action: ActionHandler | None = None

    @property
    def command_handler(self) -> CommandHandler | None:
        return self._command

    @command_handler.setter
    def command_handler(self, handler: CommandHandler | None) -> None:
        self._command = handler
        self._inner.command_handler = self._route_command if handler else None

    @property
    def on_action(self) -> ActionHandler | None:
        return self._action

    @on_action.setter
    def on_action(self, handler: ActionHandler | None) -> None:
        self._action = handler
        self._inner.on_action = self._route_action if handler else None

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

    def _offer(
        self,
        kind: str,
        event_id: str,
        channel: str,
        ts: str | None,
        payload: dict[str, Any],
        target: str,
    ) -> bool:
        """Commit the event for ``target``; False when it was already there (a redelivery)."""
        with self._store.tx() as db:
            cur = db.execute(
                """INSERT OR IGNORE INTO inbound_events (event_id, kind, channel, ts,
                       target_host, payload, received_by, received_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                (event_id, kind, channel, ts, target, json.dumps(payload), self._host, time.time()),
            )
            fresh = cur.rowcount == 1
            if fresh:
                assert isinstance(db, PgConn)
                db.conn.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(notify_channel(target))))
        return fresh

    async def _pump(self) -> None:
        async for msg in self._inner.receive():
            # The database away: held (not acked) and retried, so the message is kept even when
            # the outage outlasts Slack's redeliveries (a redelivered copy is a no-op).
            agent = await in_thread_retrying(
                partial(self.agent_of, msg.channel, msg.thread), "routing a message"
            )
            target = self._remote_host(agent)
            if target is None:
                self._local.append(msg)
                self._wake.set()
                continue
            event_id = msg.event_id or f"msg:{msg.channel}:{msg.ref}"
            offer = partial(
                self._offer, "message", event_id, msg.channel, msg.ref, _payload(msg), target
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
        await asyncio.to_thread(self._offer, kind, event_id, channel, None, payload, target)
        deadline = time.monotonic() + self._reply_wait_s
        while time.monotonic() < deadline:
            rows = await asyncio.to_thread(
                self._store.query,
                "SELECT done_at, outcome FROM inbound_events WHERE event_id = ?",
                (event_id,),
            )
            if rows and rows[0][0] is not None:
                return str(rows[0][1] or "") or None
            await asyncio.sleep(0.1)
        return f"Sent to host `{target}`, which has not answered yet; it runs when it does."

    async def _route_command(self, user: str, channel: str, text: str) -> str:
        handler = self._command
        if handler is None:
            return "agentbridge is starting; try again in a moment."
        words = text.strip().split(None, 2)
        agent = None
        if len(words) >= 2 and words[0].lower() in _AGENT_VERBS:
            agent = self._config.agent(words[1])
        target = self._remote_host(agent)
        if target is None:
            return await handler(user, channel, text)
        payload = {"user": user, "channel": channel, "text": text}
        reply = await self._ask("command", channel, payload, target, f"`{words[1]}`")
        return reply or ""

    async def _route_action(self, action: Action) -> str | None:
        handler = self._action
        if handler is None:
            return None
        ref = action.message_ref or None
        target = self._remote_host(await asyncio.to_thread(self.agent_of, action.channel, ref))
        if target is None:
            return await handler(action)
        return await self._ask("action", action.channel, _payload(action), target, "This")

    # -- owning side -------------------------------------------------------------------------

    def _listen(self, loop: asyncio.AbstractEventLoop) -> None:
        """LISTEN for this host's rows (a thread: psycopg's notifies() blocks)."""
        channel = notify_channel(self._host)
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._store.url, autocommit=True) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    loop.call_soon_threadsafe(self._wake.set)  # rows from while we were away
                    while not self._stopping.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            loop.call_soon_threadsafe(self._wake.set)
            except psycopg.Error as err:
                log.warning("route: LISTEN %s lost (%s); reconnecting", channel, err)
                self._stopping.wait(1.0)

    def _too_old(self, received_at: float) -> bool:
        limit = self._config.routed_max_wait_minutes
        return limit is not None and time.time() - received_at > limit * 60

    async def _expired(self, msg: Incoming) -> str:
        """Tell the sender a message that waited too long for this host was not pasted."""
        agent = await asyncio.to_thread(self.agent_of, msg.channel, msg.thread)
        limit = self._config.routed_max_wait_minutes
        name = f"`{agent.slug}`" if agent else "its agent"
        text = (
            f":warning: Not delivered to {name}: its host `{self._host}` was away for longer "
            f"than `routed_max_wait_minutes` ({limit:g} min). Send it again if it still applies."
        )
        await self._inner.post(
            Outgoing(
                "", msg.channel, text, f"expired:{msg.channel}:{msg.ref}", msg.thread or msg.ref
            )
        )
        log.info("route: message %s in %s waited too long; not delivered", msg.ref, msg.channel)
        return "expired"

    def _claim(self) -> tuple[ExitStack, PgConn, Any] | None:
        stack = ExitStack()
        conn = stack.enter_context(self._store.claimed())
        rows = conn.execute(
            """SELECT event_id, kind, channel, payload, attempts, received_at FROM inbound_events
               WHERE target_host = ? AND done_at IS NULL ORDER BY received_at
               LIMIT 1 FOR UPDATE SKIP LOCKED""",
            (self._host,),
        ).fetchall()
        if not rows:
            stack.close()
            return None
        return stack, conn, rows[0]

    def _finish(self, stack: ExitStack, conn: PgConn, event_id: str, outcome: str) -> bool:
        """Mark the row done (committing whatever the handler queued with it); False when the
        transaction failed and was rolled back instead."""
        if not conn.failed:
            with contextlib.suppress(psycopg.Error):
                conn.execute(
                    "UPDATE inbound_events SET done_at = ?, outcome = ? WHERE event_id = ?",
                    (time.time(), outcome, event_id),
                )
        failed = conn.failed
        stack.close()
        if failed:
            with self._store.tx() as db:
                db.execute(
                    """UPDATE inbound_events SET attempts = attempts + 1,
                           done_at = CASE WHEN attempts + 1 >= ? THEN ? ELSE done_at END,
                           outcome = 'failed'
                       WHERE event_id = ?""",
                    (MAX_ATTEMPTS, time.time(), event_id),
                )
        return not failed

    async def receive(self) -> AsyncIterator[Incoming]:
        loop = asyncio.get_running_loop()
        threading.Thread(
            target=self._listen, args=(loop,), name="route-listen", daemon=True
        ).start()
        pump = asyncio.create_task(self._pump(), name="route-pump")
        try:
            while True:
                if pump.done():
                    pump.result()
                    return  # the backend's stream ended
                while self._local:
                    yield self._local.popleft()
                claim = await in_thread_retrying(self._claim, "claiming a routed event")
                if claim is None:
                    await wait_event(self._wake, self._poll_s)
                    self._wake.clear()
                    continue
                stack, conn, row = claim
                event_id, kind, channel, payload = row[0], row[1], row[2], json.loads(row[3])
                outcome = "handled"
                try:
                    with self._store.join(conn):
                        if kind == "message" and self._too_old(float(row[5])):
                            outcome = await self._expired(_rebuild(Incoming, payload, self._inner))
                        elif kind == "message":
                            yield _rebuild(Incoming, payload, self._inner)
                        elif kind == "command" and self._command is not None:
                            outcome = await self._command(
                                str(payload["user"]), str(payload["channel"]), str(payload["text"])
                            )
                        elif kind == "action" and self._action is not None:
                            outcome = (
                                await self._action(_rebuild(Action, payload, self._inner)) or ""
                            )
                except Exception:
                    log.exception("route: %s %s in %s failed", kind, event_id, channel)
                    conn.failed = True
                except BaseException:
                    conn.failed = True  # rolled back: drained again later
                    await asyncio.to_thread(stack.close)
                    raise
                try:
                    done = await asyncio.to_thread(self._finish, stack, conn, event_id, outcome)
                except Exception as err:  # not committed (nor what it queued): drained again
                    if not is_store_error(err):
                        raise
                    log.warning("route: %s %s not finished (%s)", kind, event_id, err)
                    continue
                log.info("route: %s %s drained%s", kind, event_id, "" if done else " (failed)")
        finally:
            self._stopping.set()
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
