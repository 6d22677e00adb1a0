"""Shared core of the scripted fake model servers.

Both fakes answer from the same small script so a test can drive Claude Code and Codex with the
same prompts and expect the same behaviour; only the wire format differs. The script is keyed on
the newest human prompt, which is why the request parsers work hard to skip the text the CLIs
inject into user messages (system reminders, environment context, compaction summaries).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Self

from bridge.devtools.fake_rules import (
    LimitBook,
    Reply,
    Turn,
    decide,
    first_output_line,
    one_line,
    schema_answer,
)

__all__ = [
    "DEFAULT_USAGE",
    "FakeModelServer",
    "LoggedRequest",
    "Reply",
    "Turn",
    "decide",
    "first_output_line",
    "is_injected",
    "one_line",
    "schema_answer",
    "send_json",
    "send_sse",
]

DEFAULT_USAGE = 1000
"""Context size reported when nothing asks for another one: small, so no CLI auto-compacts."""

SUMMARY_MARKER = "FAKE-SUMMARY"
"""Tags our compaction answers so that, when a CLI feeds the summary back as a user message,
the parsers recognise it as injected text and not as a human prompt."""

# fmt: off
INJECTED_PREFIXES = (
    "<system-reminder>", "<environment_context>", "<user_instructions>", "<turn_aborted>",
    "<permissions instructions>", "<skills_instructions>", "<collaboration_mode>",
    "<apps_instructions>", "<user_shell_command>", "<command-name>", "<command-message>",
    "<local-command-stdout>", "<local-command-stderr>", "<local-command-caveat>",
    "# AGENTS.md instructions",
    "This session is being continued from a previous conversation",  # Claude, after /compact
    "Another language model started to solve this problem",  # Codex, after compaction
)
# fmt: on
"""Text blocks the CLIs add to user messages on their own; never the human's prompt."""


def is_injected(text: str) -> bool:
    """True for CLI-injected text, so a hostile prompt that merely mentions a tag still counts."""
    stripped = text.lstrip()
    return stripped.startswith(INJECTED_PREFIXES) or SUMMARY_MARKER in stripped


@dataclass
class LoggedRequest:
    """One request as the fake saw it; `kind` and `prompt` let tests assert what the model got."""

    seq: int
    time: float
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    kind: str = "other"
    prompt: str | None = None
    history_prompts: int = 0
    reply: dict[str, Any] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    """Routes every method to the owning fake so unknown calls are logged, never dropped."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def _handle(self) -> None:
        self.server.owner.dispatch(self)

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request stderr noise; the request log is the record."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, addr: tuple[str, int], owner: FakeModelServer) -> None:
        self.owner = owner
        super().__init__(addr, _Handler)


class FakeModelServer:
    """Base for the fakes: thread lifecycle, request log, canned-reply queue, SSE plumbing.

    A background thread (not asyncio) so the same object works from sync pytest and from inside
    an asyncio program without owning that program's loop.
    """

    name: ClassVar[str] = "fake"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_path: str | Path | None = None,
        default_usage: int = DEFAULT_USAGE,
    ) -> None:
        self.host = host
        self._want_port = port
        self.log_path = Path(log_path) if log_path else None
        self._default_usage = default_usage
        self._cond = threading.Condition()
        self._requests: list[LoggedRequest] = []
        self._queue: deque[Reply] = deque()
        self._stopping = threading.Event()
        self._released = threading.Event()
        self._released.set()
        self._held_kinds: set[str] = {"turn", "tool_result"}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._ids = 0
        self._run = uuid.uuid4().hex[:8]
        self._limits = LimitBook()

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self._want_port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() returns in ~50 ms, not the default 0.5 s
            name=f"{self.name}-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Also wakes handlers parked in `SLOW:` or `hold()` so shutdown never hangs a test."""
        self._stopping.set()
        self._released.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.name} is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def set_usage(self, n: int) -> None:
        """Sticky context size for answers whose prompt has no `USAGE:`."""
        self._default_usage = n

    def enqueue(self, reply: str | Reply) -> None:
        """Canned replies win over the script, consumed by main-turn requests only (not titles,
        token counts or compaction) so background chatter cannot eat them."""
        with self._cond:
            self._queue.append(Reply(text=reply) if isinstance(reply, str) else reply)

    def hold(self, *, compaction: bool = False) -> None:
        """Park main-turn answers until `release()`: an agent mid-turn without guessing times.
        With ``compaction``, summarization requests are parked too (an agent mid-compaction)."""
        self._held_kinds = {"turn", "tool_result"} | ({"compact"} if compaction else set())
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._cond:
            return list(self._requests)

    def prompts(self) -> list[str]:
        """Human prompts in arrival order, one per user turn (retries of a request collapse)."""
        seen: set[tuple[str, int]] = set()
        out: list[str] = []
        for req in self.requests:
            if req.kind != "turn" or req.prompt is None:
                continue
            key = (req.prompt, req.history_prompts)
            if key not in seen:
                seen.add(key)
                out.append(req.prompt)
        return out

    def wait_for(self, predicate: Callable[[FakeModelServer], bool], timeout: float = 30.0) -> None:
        """Block until `predicate(self)` holds; wakes on every logged request, re-checks often
        for predicates that look elsewhere. Raises TimeoutError naming the recent requests."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                recent = [f"{r.method} {r.path} {r.kind} {r.prompt!r}" for r in self.requests]
                raise TimeoutError(f"{self.name}: condition not met in {timeout}s; {recent[-8:]}")
            with self._cond:
                self._cond.wait(min(remaining, 0.05))

    def _log(self, method: str, path: str, headers: dict[str, str], body: Any) -> LoggedRequest:
        with self._cond:
            req = LoggedRequest(len(self._requests), time.time(), method, path, headers, body)
            self._requests.append(req)
        return req

    def _commit(self, req: LoggedRequest) -> None:
        """Publish the classified request (file + waiters) once its reply is known."""
        if self.log_path is not None:
            line = json.dumps(asdict(req), ensure_ascii=False, default=str)
            with self._cond, self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        self._notify()

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def next_id(self, prefix: str) -> str:
        """Unique across server restarts, as real API ids are: the runner's ledger keys on them,
        so a counter that restarts at 1 would make a second run's answers look already posted."""
        with self._cond:
            self._ids += 1
            return f"{prefix}_fake{self._run}{self._ids:06d}"

    def limit(self, seconds: float) -> None:
        """Answer main requests as at an account usage limit for ``seconds`` from the next one,
        whatever their prompt (the `LIMIT:` directive without touching the prompt)."""
        self._limits.force(seconds)

    def clear_limits(self) -> None:
        """Forget every usage-limit window, so a `LIMIT:` prompt limits again."""
        self._limits.clear()

    def limited(self, req: LoggedRequest, turn: Turn) -> float | None:
        """The reset time (epoch s) when this request hits a usage limit (`LIMIT:`, `limit()`),
        recorded on the request as a 429; None when it is answered normally."""
        if turn.kind not in ("turn", "tool_result", "compact"):
            return None
        reset = self._limits.reset_at(turn.prompt or "", time.time())
        if reset is not None:
            req.kind, req.prompt = turn.kind, turn.prompt
            req.history_prompts = turn.history_prompts
            req.reply = {"status": 429, "limited_until": reset}
            self._notify()
        return reset

    def stall(self, seconds: float) -> None:
        """Keep a stream silent (`STALL:`); `stop()` cuts it short."""
        self._stopping.wait(seconds)

    def plan(self, req: LoggedRequest, turn: Turn) -> Reply:
        """Record the classification, then pick the reply: queue first, else the script."""
        req.kind, req.prompt, req.history_prompts = turn.kind, turn.prompt, turn.history_prompts
        reply: Reply | None = None
        if turn.kind in ("turn", "tool_result"):
            with self._cond:
                reply = self._queue.popleft() if self._queue else None
        if reply is None:
            reply = decide(turn, self._default_usage)
        req.reply = asdict(reply)
        self._notify()
        return reply

    def plan_fixed(self, req: LoggedRequest, turn: Turn, text: str) -> Reply:
        """Record a side or compaction request, which the script and the queue never answer."""
        req.kind, req.prompt, req.history_prompts = turn.kind, turn.prompt, turn.history_prompts
        req.reply = {"text": text}
        self._notify()
        return Reply(text=text, usage=self._default_usage)

    def pause(self, reply: Reply, turn: Turn) -> None:
        """Honour `SLOW:` and `hold()` before any byte goes out, so the CLI shows a live turn."""
        if turn.kind not in self._held_kinds:
            return
        if reply.delay > 0 and turn.kind != "compact":
            self._stopping.wait(reply.delay)
        while not self._released.wait(0.1) and not self._stopping.is_set():
            pass

    def dispatch(self, h: _Handler) -> None:
        headers = {k.lower(): v for k, v in h.headers.items()}
        length = int(h.headers.get("Content-Length") or 0)  # both CLIs send one, never chunked
        raw = h.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        path = h.path.split("?", 1)[0]
        req = self._log(h.command, h.path, headers, body)
        try:
            self.route(h, req, path, body)
        except (ConnectionError, TimeoutError):
            pass  # the CLI gave up on this answer (interrupt, timeout): nothing to do
        finally:
            self._commit(req)

    def route(self, h: _Handler, req: LoggedRequest, path: str, body: Any) -> None:
        """Per-API routing, provided by each fake."""
        raise NotImplementedError


def send_json(
    h: BaseHTTPRequestHandler, status: int, obj: Any, headers: dict[str, str] | None = None
) -> None:
    data = json.dumps(obj).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        h.send_header(name, value)
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(data)


def send_sse(
    h: BaseHTTPRequestHandler,
    events: Iterable[tuple[str, dict[str, Any]]],
    request_id: str,
    *,
    headers: dict[str, str] | None = None,
    stall: Callable[[], None] | None = None,
    stall_after: int = 2,
) -> None:
    """Stream events, then close: both CLIs accept a body delimited by the connection close.
    With ``stall``, call it after the first ``stall_after`` events (a stream gone quiet)."""
    h.send_response(200)
    h.send_header("Content-Type", "text/event-stream")
    h.send_header("Cache-Control", "no-cache")
    h.send_header("Connection", "close")
    h.send_header("request-id", request_id)
    h.send_header("x-request-id", request_id)
    for name, value in (headers or {}).items():
        h.send_header(name, value)
    h.end_headers()
    h.close_connection = True
    for index, (event, data) in enumerate(events):
        if stall is not None and index == stall_after:
            stall()
        h.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
        h.wfile.flush()
