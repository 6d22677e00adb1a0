"""Launch-flag canaries: run a CLI with the exact flags the runner would use, exit at once.

A rejected flag otherwise shows up only as an agent crash-looping in its pane. The canary runs
the CLI with the runner's argv (same binary, flags, ``-c`` overrides, env and cwd) turned into an
invocation that parses everything, then stops before doing any work, so ``agentbridge doctor``
can print the CLI's own complaint. What each CLI does was established on the pinned binaries
(claude 2.1.328, codex 0.169.0 and 0.136.0) with ``strace -f`` watching files and sockets.

Codex: ``codex <flags> features list``
    ``--version`` and ``--help`` are not enough: clap rejects unknown flags before printing
    them, but the ``-c`` overrides are only read when a command loads the configuration
    (``-c 'projects={broken' --version`` exits 0). ``features list`` loads the full config with
    every override (``invalid type: string "{broken", expected a map in `projects```, an unknown
    hook ``type``, ``wire_api = "chat"``, an unknown ``model_provider``: exit 1), accepts all the
    top-level TUI flags before the subcommand (an unknown one: clap's ``unexpected argument``,
    exit 2; a bad ``--sandbox`` value likewise), prints a table and exits 0 in about 0.2 s.
    Under strace it makes no connection and writes nothing: not the work tree, not CODEX_HOME.
    ``mcp list``, ``login status`` and ``debug`` also load the config; ``doctor`` does network
    checks. Adjustments: ``resume <id>`` is dropped (its flags are the top-level ones plus
    ``--last/--all/--include-non-interactive``, which the runner never passes), and so is
    ``--strict-config``, which every no-op subcommand refuses ("not supported for `codex
    features`"). CODEX_HOME must exist ("failed to resolve CODEX_HOME"), as ``prepare()``
    ensures before a launch.

Claude Code: ``claude --print --no-session-persistence <flags>`` with stdin from /dev/null
    ``--version`` is answered before option parsing (``--definitely-not-a-flag --version``
    exits 0) and ``--help`` too. In print mode commander parses every option and Claude then
    validates them (``--session-id`` must be a UUID, ``--settings``/``--mcp-config`` must
    load, choices such as ``--permission-mode``, and running as root with
    ``--dangerously-skip-permissions`` without IS_SANDBOX=1) before it looks for a prompt;
    with none it stops with "Error: Input must be provided either through stdin or as a prompt
    argument when using --print" and exit 1 in about 0.5 s. That exact line means "everything
    was accepted"; anything else printed before it (an unknown model, skipped settings
    entries, an unknown ``--effort``) is a warning. An unknown flag gives commander's
    ``error: unknown option '--x'``, exit 1. No dialog can appear (print mode skips the trust
    dialog; stdin is not a terminal). It writes only in CLAUDE_CONFIG_DIR (``.claude.json``,
    its backups) and never the work tree. Adjustment: the session selector (``--resume <id>``
    or ``--session-id <id>``) becomes ``--session-id <fresh uuid>``. ``--resume <id> -p`` with
    no prompt answers "No deferred tool marker found in the resumed session ... Provide a
    prompt", i.e. it is how a session paused on a deferred tool is continued, which must never
    happen by accident; an id whose transcript exists is refused ("Session ID ... is already
    in use"); and per-session state (``session-env/<id>``) belongs to the live agent. The
    runner mints these ids and uses ``--resume`` only when the transcript exists, so no flag
    of substance goes unchecked. Against a prompt hidden in ``args`` the canary also sets
    ANTHROPIC_BASE_URL to a closed loopback port, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1
    (without it Claude connects to the base URL and resolves other hosts at startup) and
    DISABLE_AUTOUPDATER=1, and passes ``--no-session-persistence``.

Only this package knows CLI specifics, so the recipes live here, keyed by runtime name;
:func:`judge` and :func:`run_canary` are generic.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TIMEOUT = 20.0
_MAX_DETAIL = 400


@dataclass(frozen=True, slots=True)
class Canary:
    """A flag check to run, and how to read its outcome."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    """Laid over the agent's launch environment (only to keep the canary off the network)."""
    accepted: tuple[str, ...] = ()
    """Text that, printed with a non-zero exit, still means every flag was accepted."""
    noise: tuple[str, ...] = ()
    """Regexes of output lines that are neither complaint nor warning."""
    stop_at: tuple[str, ...] = ()
    """Regexes of lines after which the output is boilerplate (usage, backtraces)."""


@dataclass(frozen=True, slots=True)
class CanaryResult:
    ok: bool
    detail: str
    """The CLI's complaint when rejected; a short summary when accepted."""
    warnings: tuple[str, ...] = ()
    argv: tuple[str, ...] = ()


def dead_loopback_url() -> str:
    """An http URL on a loopback port nothing listens on (connections are refused at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def claude_canary(plan_argv: Sequence[str]) -> Canary:
    """Print mode with no prompt, on a fresh session id (see the module docstring)."""
    argv = list(plan_argv)
    for flag in ("--resume", "--session-id"):
        if flag in argv[1:] and argv.index(flag, 1) + 1 < len(argv):
            at = argv.index(flag, 1)
            argv[at : at + 2] = ["--session-id", str(uuid.uuid4())]
            break
    argv[1:1] = ["--print", "--no-session-persistence"]
    return Canary(
        argv=tuple(argv),
        env={
            "ANTHROPIC_BASE_URL": dead_loopback_url(),
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
        },
        accepted=("Input must be provided either through stdin or as a prompt argument",),
    )


def codex_canary(plan_argv: Sequence[str]) -> Canary:
    """``features list`` after the launch flags (see the module docstring)."""
    argv = list(plan_argv)
    if argv[1:2] == ["resume"]:
        del argv[1:3]
    argv = [arg for arg in argv if arg != "--strict-config"]
    return Canary(
        argv=(*argv, "features", "list"),
        noise=(r"^WARNING: proceeding, even though we could not",),
        stop_at=(r"^Stack backtrace:", r"^Usage: ", r"^For more information", r"^\s*tip: "),
    )


def _lines(text: str, canary: Canary) -> list[str]:
    kept: list[str] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if any(re.search(pattern, line) for pattern in canary.stop_at):
            break
        if line.strip() and not any(re.search(pattern, line) for pattern in canary.noise):
            kept.append(line.strip())
    return kept


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def judge(canary: Canary, returncode: int, stdout: str, stderr: str) -> CanaryResult:
    """Read a finished canary: accepted (with any warnings it printed) or the complaint."""
    err_lines = _lines(stderr, canary)
    marker = next((m for m in canary.accepted if m in stderr or m in stdout), None)
    if returncode == 0 or marker is not None:
        warnings = tuple(line for line in err_lines if marker is None or marker not in line)
        return CanaryResult(True, "launch flags accepted", warnings, canary.argv)
    complaint = " ".join(err_lines) or " ".join(_lines(stdout, canary)[-5:])
    if not complaint:
        complaint = "no message"
    return CanaryResult(False, _clip(f"exit {returncode}: {complaint}"), argv=canary.argv)


def run_canary(
    canary: Canary,
    env: Mapping[str, str],
    cwd: Path,
    timeout: float = DEFAULT_TIMEOUT,
) -> CanaryResult:
    """Run it in its own process group (the CLIs are node wrappers with native children), with
    no terminal and empty stdin so nothing can wait for a person; kill the group on timeout."""
    full_env = {**env, **canary.env}
    try:
        proc = subprocess.Popen(
            canary.argv,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as err:
        return CanaryResult(False, f"cannot run {canary.argv[0]}: {err}", argv=canary.argv)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return CanaryResult(
            False,
            f"did not exit within {timeout:g} s (a prompt in args? a dialog?)",
            argv=canary.argv,
        )
    return judge(canary, proc.returncode, stdout, stderr)
