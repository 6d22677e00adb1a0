"""``agentbridge hook EVENT``: relay one CLI hook payload to the runner, never blocking the agent.

Agents run this on every hook, so it imports only the standard library and gives up after a
short timeout. It always exits 0 and prints nothing for hook events (a Codex Stop hook must
print JSON or nothing); for Claude's status line it prints the short status the runner
returns. Anything that goes wrong is appended to ``hooks.log`` in the state dir, where
``agentbridge doctor`` looks for it. A hook that finds nobody listening on the socket (the
runner is stopped, or stopping: a clean stop ends the agents, whose ``SessionEnd`` hooks fire
after the hook server closed) is logged with ``"runner_down": true``, so the doctor can tell
it from a hook that reached a runner and failed.

The one exception is ``agentbridge hook wait:EVENT``: the hook that carries a person's answer
(an agent's question, an approval). It holds the agent until the runner replies with the
answer, printed on stdout as the CLI's hook output. An approval fails closed: when no answer can
come (the runner refused the hook, replied with something unreadable, or this code broke) it
prints the CLI's deny with the reason; it never exits quietly (the CLI would draw its own
permission dialog in a pane nobody watches), nor with 2 (Claude draws its dialog then too,
seen on 2.1.332). A question that cannot be relayed is left to the CLI's picker, which the
runner's pane fallback reads and relays (docs/questions.md).
When the runner goes away meanwhile (a restart, a SIGKILL), it connects again every second and
re-sends the same payload with the same request id; the runner finds the open ask by its key
and that id in its database, so it is neither lost nor answered twice, while the same command
asked again later is a new request. The CLI's own hook timeout bounds the wait.

The agent's identity and its per-launch token come from the pane environment
(``KANBAN_SESSION_ID``, ``AGENTBRIDGE_SLUG``, ``AGENTBRIDGE_HOOK_TOKEN``), the socket path from
``AGENTBRIDGE_HOOK_SOCKET``.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

TIMEOUT_S = 2.0
MAX_PAYLOAD = 4 << 20
MAX_MESSAGE = 8 << 20
"""The longest line the runner's socket reads (``bridge/hooks/server.py`` uses this too)."""
FAILED = 1
"""The exit code of a blocking hook that could not even print its deny: Claude blocks the call
(the runtime sets ``onFailure: "block"`` on these hooks). Not 2: Claude 2.1.332 answers a
``PermissionRequest`` hook's exit 2 by drawing its own dialog (cli-signals.md d)."""
STATUSLINE = "statusline"
APPROVAL_EVENT = "PermissionRequest"
"""The blocking hook that must fail closed (``runtimes.asks.APPROVAL_EVENT``; not imported: the
common path stays stdlib-only)."""


def _log_failure(
    sock_path: str | None, slug: str, event: str, error: str, runner_down: bool = False
) -> None:
    if not sock_path:
        return
    log = Path(sock_path).parent / "hooks.log"
    entry: dict[str, Any] = {"ts": time.time(), "slug": slug, "event": event, "error": error}
    if runner_down:
        entry["runner_down"] = True
    line = json.dumps(entry)
    try:
        with log.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    except OSError:
        pass


WAIT_PREFIX = "wait:"
RECONNECT_S = 1.0


def _message(event: str, raw: str, environ: Mapping[str, str]) -> dict[str, Any]:
    try:
        payload: Any = json.loads(raw) if raw.strip() else {}
    except ValueError:
        payload = {"raw": raw[:10000]}
    return {
        "v": 1,
        "event": event,
        "slug": environ.get("AGENTBRIDGE_SLUG", ""),
        "agent_id": environ.get("KANBAN_SESSION_ID", ""),
        "token": environ.get("AGENTBRIDGE_HOOK_TOKEN", ""),
        "payload": payload,
        "sent_at": time.time(),
    }


def relay(event: str, raw: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """Send one hook to the runner; return its reply (raises OSError/ValueError on failure)."""
    return _exchange(_message(event, raw, environ), environ, TIMEOUT_S)


def _exchange(
    message: dict[str, Any], environ: Mapping[str, str], reply_timeout: float | None
) -> dict[str, Any]:
    path = environ.get("AGENTBRIDGE_HOOK_SOCKET")
    if not path:
        raise OSError("AGENTBRIDGE_HOOK_SOCKET is not set in the agent's environment")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(TIMEOUT_S)
        conn.connect(path)
        conn.sendall(json.dumps(message).encode() + b"\n")
        conn.settimeout(reply_timeout)
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
    if not reply:
        raise ConnectionResetError("the runner closed the connection without a reply")
    answer = json.loads(reply)
    if not isinstance(answer, dict):
        raise ValueError("runner sent a reply that is not an object")
    return answer


class Refused(Exception):
    """The blocking hook cannot get a person's answer: the call must be denied."""


def _fit(message: dict[str, Any], raw: str) -> dict[str, Any]:
    """The message as the runner can read it: a payload cut at :data:`MAX_PAYLOAD`, or whose
    line would pass :data:`MAX_MESSAGE`, is replaced by a note of that, which the runner
    denies (and says so in the channel) instead of the line never arriving."""
    payload = message["payload"]
    tool = str(payload.get("tool_name") or "")[:200] if isinstance(payload, dict) else ""
    size = len(json.dumps(message).encode())
    if len(raw) >= MAX_PAYLOAD or size > MAX_MESSAGE:
        message = {**message, "payload": {"oversize": max(len(raw), size), "tool_name": tool}}
    return message


def wait_for_answer(event: str, raw: str, env: Mapping[str, str]) -> dict[str, Any] | None:
    """Hold until the runner answers; the hook output to print, or None (nothing to say: the
    CLI decides as without agentbridge). Raises :class:`Refused` when no answer can come (the
    runner refused the hook or sent something unreadable): the caller denies the call.

    The request id is minted here, once per hook run, and re-sent on every reconnect: the
    runner hands an answer given before only to the same request (bridge/answers/book.py)."""
    message = _fit(_message(event, raw, env), raw)
    message["wait"] = True
    message["request_id"] = uuid.uuid4().hex
    sock = env.get("AGENTBRIDGE_HOOK_SOCKET")
    slug = env.get("AGENTBRIDGE_SLUG", "?")
    reported = False
    while True:
        try:
            answer = _exchange(message, env, None)
        except ValueError as err:
            _log_failure(sock, slug, WAIT_PREFIX + event, f"bad reply: {err}")
            raise Refused(f"agentbridge: the runner's reply was unreadable ({err})") from err
        except OSError as err:
            if not reported:  # once per wait: the retries would flood the log
                down = isinstance(err, FileNotFoundError | ConnectionRefusedError)
                detail = f"waiting for an answer; runner unreachable, retrying ({err})"
                _log_failure(sock, slug, WAIT_PREFIX + event, detail, runner_down=down)
                reported = True
            time.sleep(RECONNECT_S)
            continue
        if not answer.get("ok"):
            _log_failure(sock, slug, WAIT_PREFIX + event, f"rejected: {answer.get('error')}")
            raise Refused(f"agentbridge refused this hook: {answer.get('error')}; denied")
        output = answer.get("output")
        return output if isinstance(output, dict) else None


def _deny(event: str, reason: str) -> int:
    """Fail closed: print the CLI's deny for ``event`` (the runtimes' shared hook shapes,
    imported only here: the common path stays stdlib-only), else exit :data:`FAILED`."""
    print(reason, file=sys.stderr)
    try:
        from runtimes.asks import deny_output

        print(json.dumps(deny_output(event, reason)))
    except Exception:
        return FAILED
    return 0


def main(event: str, stdin: IO[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    raw = (stdin or sys.stdin).read(MAX_PAYLOAD)
    if event.startswith(WAIT_PREFIX):
        hooked = event[len(WAIT_PREFIX) :]
        try:
            output = wait_for_answer(hooked, raw, env)
        except Exception as err:  # Refused, or a bug here
            reason = str(err) if isinstance(err, Refused) else f"agentbridge hook failed: {err!r}"
            if hooked == APPROVAL_EVENT:  # deny: never let the CLI draw its permission dialog
                return _deny(hooked, reason)
            # A question: the CLI draws its picker, which the runner's pane fallback relays.
            _log_failure(
                env.get("AGENTBRIDGE_HOOK_SOCKET"), env.get("AGENTBRIDGE_SLUG", "?"), event, reason
            )
            return 0
        if output is not None:
            print(json.dumps(output))
        return 0
    slug = env.get("AGENTBRIDGE_SLUG", "?")
    status = "agentbridge"
    try:
        answer = relay(event, raw, env)
        if not answer.get("ok"):
            _log_failure(
                env.get("AGENTBRIDGE_HOOK_SOCKET"),
                slug,
                event,
                f"rejected: {answer.get('error', 'no reason')}",
            )
        status = str(answer.get("status") or status)
    except (FileNotFoundError, ConnectionRefusedError) as err:  # nobody listens: no runner
        _log_failure(
            env.get("AGENTBRIDGE_HOOK_SOCKET"),
            slug,
            event,
            f"runner not running ({type(err).__name__})",
            runner_down=True,
        )
    except (OSError, ValueError) as err:
        _log_failure(
            env.get("AGENTBRIDGE_HOOK_SOCKET"), slug, event, f"{type(err).__name__}: {err}"
        )
    if event == STATUSLINE:
        print(status)
    return 0
