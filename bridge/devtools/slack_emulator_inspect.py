"""Looking into the Slack emulator: what tests and benchmarks assert on, and `wait_for`.

Every inspection takes the state lock and returns deep copies (plain JSON-able values), so a
test can hold on to a result while the server keeps changing the workspace. `SlackEmulator`
mixes this in; it is a separate module only to keep each file readable.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import TypeVar

from bridge.devtools.slack_emulator_api import WebApi
from bridge.devtools.slack_emulator_model import Json, top_level
from bridge.devtools.slack_emulator_socket import SocketHub
from bridge.devtools.slack_emulator_state import WorkspaceState

T = TypeVar("T")


class Inspection:
    """Read-only views of the workspace; mixed into `SlackEmulator`."""

    state: WorkspaceState
    hub: SocketHub
    api: WebApi

    def messages(self, channel: str, include_threads: bool = True) -> list[Json]:
        """Stored messages, oldest first (metadata included); replies too unless told."""
        with self.state.lock:
            msgs = self.state.channel(channel).messages
            if not include_threads:
                msgs = [m for m in msgs if top_level(m)]
            return copy.deepcopy(msgs)

    def thread(self, channel: str, ts: str) -> list[Json]:
        """The thread rooted at `ts`: parent first, then replies in order."""
        with self.state.lock:
            return copy.deepcopy(self.state.thread_of(self.state.channel(channel), ts))

    def reactions(self, channel: str, ts: str) -> dict[str, list[str]]:
        with self.state.lock:
            msg = self.state.message(self.state.channel(channel), ts)
            return {r["name"]: list(r["users"]) for r in msg.get("reactions", [])}

    def ephemerals(self, user: str | None = None, channel: str | None = None) -> list[Json]:
        """Messages only one person sees ({channel, user, text, blocks?, thread_ts,
        message_ts, source}), from chat.postEphemeral or a response_url, oldest first."""
        with self.state.lock:
            cid = self.state.channel(channel).id if channel else None
            return [
                copy.deepcopy(e)
                for e in self.state.ephemerals
                if user in (None, e["user"]) and cid in (None, e["channel"])
            ]

    def responses(self) -> list[Json]:
        """Slash-command answers: ack payloads and POSTs to `response_url`, in order."""
        with self.state.lock:
            return copy.deepcopy(self.state.responses)

    def files(self) -> list[Json]:
        """Every file (uploaded by the bot or shared by a person) with its bytes as
        `content` (None while a bot upload's bytes have not arrived)."""
        with self.state.lock:
            return [
                {**f.to_api(self.api.http_base, self.state.team_id), "content": f.content}
                for f in self.state.files.values()
            ]

    def views(self, user: str | None = None) -> list[Json]:
        """Modals the app opened: {id, user, state, view, errors}. `state` is "open",
        "submitting" (a submission waits for the app's ack; back to "open" if none comes in
        `ack_timeout`) or "closed"; `errors` holds the app's `response_action: errors` answer
        while the modal stays open."""
        with self.state.lock:
            return [
                copy.deepcopy(v) for v in self.state.views.values() if user in (None, v["user"])
            ]

    def view(self, view_id: str) -> Json:
        with self.state.lock:
            return copy.deepcopy(self.state.views[view_id])

    def calls(self, method: str | None = None) -> list[tuple[str, Json]]:
        """Every Web API call received (faulted ones too), token removed from params."""
        with self.state.lock:
            log = self.state.call_log
            return [copy.deepcopy(c) for c in log if method is None or c[0] == method]

    def deliveries(self, kind: str | None = None) -> list[Json]:
        """Socket Mode requests: the payload sent, its envelope ids, the connection each
        envelope went to, attempts and ack state (with the ack's payload)."""
        with self.state.lock:
            ds = self.state.deliveries.values()
            return [d.summary() for d in ds if kind is None or d.kind == kind]

    def connections(self) -> list[Json]:
        """Open Socket Mode connections: {id, retiring, sent (envelopes sent on it)}."""
        return self.hub.connections()

    def connection_history(self, token: str | None = None) -> list[Json]:
        """Every Socket Mode connection ever opened with `token` (all when None), oldest first:
        id, opened/closed sequence numbers and monotonic times, `refused` (the reason it was
        turned away, never live), the `disconnect` reasons it was sent, whether it went deaf.
        What "live" means: :mod:`bridge.devtools.slack_emulator_conns`."""
        return self.hub.history(token)

    def live_overlaps(self, token: str | None = None) -> list[tuple[str, str]]:
        """Pairs of connections of `token` that were live at the same moment (a runner should
        have none)."""
        return self.hub.overlaps(token)

    def connection_count(self) -> int:
        return self.hub.open_count()

    @property
    def rate_limited_count(self) -> int:
        """How many HTTP 429 answers were served (rate limits and injected 429s alike)."""
        with self.state.lock:
            return len(self.state.rate_limited)

    def rate_limits(self) -> list[Json]:
        """Each 429 served: {method, channel, scope, retry_after}; scope is "channel",
        "workspace", "method" (its tier's bucket) or "injected" (`inject`)."""
        with self.state.lock:
            return copy.deepcopy(self.state.rate_limited)

    def rate_limited_by_method(self) -> dict[str, int]:
        """How many 429s each method was answered (every scope, injected ones included)."""
        with self.state.lock:
            counts: dict[str, int] = {}
            for record in self.state.rate_limited:
                counts[record["method"]] = counts.get(record["method"], 0) + 1
            return counts

    def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0, what: str = "") -> T:
        """Poll `predicate()` until truthy, waking on every state change (and every 50 ms for
        outside state); raise TimeoutError describing the workspace.

        The predicate runs *without* the state lock (each inspection method takes it), so it
        may call the emulator over HTTP or wait on the code under test without deadlocking.
        On the emulator's own loop use `await asyncio.to_thread(emu.wait_for, ...)`."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(self.summary(f"timed out after {timeout}s: {what}"))
            with self.state.changed:
                self.state.changed.wait(min(remaining, 0.05))

    def summary(self, headline: str = "Slack emulator state") -> str:
        """A readable dump for failure messages: recent messages, calls, deliveries."""
        return text_summary(self.state, self.connection_count(), headline)


def text_summary(st: WorkspaceState, open_sockets: int, headline: str) -> str:
    """`SlackEmulator.summary`: a readable dump for failure messages (recent messages, calls,
    deliveries, 429s)."""
    lines = [headline, f"open sockets: {open_sockets}"]
    with st.lock:
        for ch in st.channels.values():
            lines.append(f"#{ch.name} ({ch.id}), {len(ch.messages)} messages:")
            lines += [
                f"  {m['ts']} {m.get('bot_id') or m.get('user')} "
                f"thread={m.get('thread_ts')}: {str(m.get('text'))[:100]!r}"
                for m in ch.messages[-8:]
            ]
        lines.append(f"ephemerals: {[e['text'][:60] for e in st.ephemerals[-5:]]}")
        lines.append(f"last calls: {[c[0] for c in st.call_log[-12:]]}")
        lines.append(f"429s served: {len(st.rate_limited)} {st.rate_limited[-3:]}")
        for d in list(st.deliveries.values())[-8:]:
            brief = {k: v for k, v in d.summary().items() if k != "payload"}
            lines.append(f"  {brief}")
    return "\n".join(lines)
