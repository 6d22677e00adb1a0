"""The runner's view of one tmux server, and the single chokepoint for keystrokes.

One class per tmux concept, after libtmux: :class:`TmuxServer` (a ``-L`` socket) hands out
:class:`PaneState` snapshots and :class:`AgentPane` handles. Every keystroke the runner ever sends
into an agent goes through :meth:`AgentPane.paste`, which holds a per-pane lock (a thread lock
plus an ``flock`` on a file in the state dir, so the daemon and a concurrent ``agentbridge send``
never interleave) and uses a uniquely named buffer, because tmux's shared unnamed buffer swaps
prompts between agents under concurrency.

Sessions the runner created carry the user option ``@agentbridge`` set to the runner's id (a
hash of its state dir); a runner only ever stops sessions bearing its own mark, so two runners,
or a person's own sessions, can share one tmux server safely.

Arguments reach tmux through its own command parser, not straight to ``execvp``, and three of
its rules would change what the agent sees (checked on tmux 3.3a, tests/unit/test_tmux_args.py):
an argument ending in ``;`` ends the tmux command (so ``\\;`` is the escape), ``-c`` directories
are expanded as formats (``#{...}``, even ``#(cmd)``), and a pane command of exactly one word is
run through ``sh -c``. :meth:`TmuxServer.run` escapes every argument for the first rule,
:func:`literal_format` covers the second, :func:`exec_argv` the third.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import libtmux

from bridge.errors import AgentbridgeError
from runtimes.jsonfile import flocked

log = logging.getLogger("agentbridge.tmux")

MARK = "@agentbridge"
SPEC = "@agentbridge_spec"
_FIELDS = (
    "session_name",
    "window_index",
    "pane_index",
    "pane_id",
    "pane_pid",
    "pane_dead",
    "pane_dead_status",
    "pane_current_command",
    MARK,
    SPEC,
)
#: Default pause between the paste and Enter (runtimes set their own: Codex treats an Enter
#: that arrives within ~100 ms of fast input as part of the paste, FORMATS.md). With a
#: ``shown`` check it is only the longest wait: Enter goes as soon as the paste is on screen.
SUBMIT_PAUSE_S = 0.3
#: How often the pane is captured while waiting for a paste to show.
SHOWN_POLL_S = 0.005
#: The longest wait, after Enter, for the screen to show the CLI took it (still holding the
#: pane's lock): a paste that follows at once is otherwise read with the Enter in one go, and
#: Claude then glues the two prompts together (seen on 2.1.332 with steering in a burst).
SUBMIT_SETTLE_S = 1.0

Shown = Callable[[str, str, str], bool]
"""``(capture before the paste, capture now, text) -> the paste is on screen`` (a runtime's
``paste_shown``)."""
Composer = Callable[[str], str | None]
"""``capture -> the input box's first line`` (a runtime's ``composer``)."""


class TmuxError(AgentbridgeError, RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class PaneState:
    """The first pane of one session, as tmux saw it at snapshot time."""

    session: str
    pane_id: str
    pid: int | None
    dead: bool
    dead_status: int | None
    command: str
    mark: str
    spec_hash: str


@dataclass(frozen=True, slots=True)
class PasteResult:
    target: str
    buffer: str
    chars: int
    submitted: bool


_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextlib.contextmanager
def pane_lock(lock_file: Path) -> Iterator[None]:
    """Hold the per-pane lock across threads and processes."""
    with _thread_locks_guard:
        tlock = _thread_locks.setdefault(str(lock_file), threading.Lock())
    with tlock, flocked(lock_file):
        yield


class TmuxServer:
    """A tmux server addressed by socket name (``tmux -L``), or the default server."""

    def __init__(self, socket: str | None = None) -> None:
        self.socket = socket
        self.server = libtmux.Server(socket_name=socket) if socket else libtmux.Server()

    def run(self, *args: str, check: bool = True) -> list[str]:
        """Run one tmux command; every argument after the command name reaches it literally."""
        proc = self.server.cmd(args[0], *(literal_arg(a) for a in args[1:]))
        if check and proc.stderr:
            raise TmuxError(f"tmux {args[0]}: {' '.join(proc.stderr).strip()}")
        return list(proc.stdout)

    def snapshot(self) -> dict[str, PaneState]:
        """One ``list-panes -a`` call describing every session's first pane."""
        fmt = "\t".join("#{" + f + "}" for f in _FIELDS)
        proc = self.server.cmd("list-panes", "-a", "-F", fmt)
        if proc.stderr:
            text = " ".join(proc.stderr)
            # "no current target": the server's last session was just killed (it has none)
            gone = ("no server running", "error connecting", "No such file", "no current target")
            if any(marker in text for marker in gone):
                return {}
            raise TmuxError(f"tmux list-panes: {text}")
        panes: dict[str, tuple[tuple[int, int], PaneState]] = {}
        for line in proc.stdout:
            parts = line.split("\t")
            if len(parts) != len(_FIELDS):
                continue
            name, win, idx, pane_id, pid, dead, status, cmd, mark, spec = parts
            order = (_int(win) or 0, _int(idx) or 0)
            state = PaneState(
                session=name,
                pane_id=pane_id,
                pid=_int(pid),
                dead=dead == "1",
                dead_status=_int(status),
                command=cmd,
                mark=mark,
                spec_hash=spec,
            )
            if name not in panes or order < panes[name][0]:
                panes[name] = (order, state)
        return {name: state for name, (_, state) in panes.items()}

    def has_session(self, name: str) -> bool:
        return name in self.snapshot()

    def launch(
        self,
        name: str,
        cwd: Path,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        mark: str,
        spec_hash: str,
    ) -> PaneState:
        """Start ``argv`` as the first pane of session ``name``, creating or reusing it.

        The session starts on a placeholder so ``remain-on-exit`` is set before the agent runs:
        a CLI that dies at once then leaves a dead pane (with its exit status) rather than
        vanishing, and the next attempt respawns it in place.
        """
        if not self.has_session(name):
            self.run(
                "new-session",
                "-d",
                "-s",
                name,
                "-c",
                literal_format(str(cwd)),
                "-x",
                "200",
                "-y",
                "50",
                "tail",
                "-f",
                "/dev/null",
            )
        target = f"={name}:"
        self.run("set-option", "-w", "-t", target, "remain-on-exit", "on")
        self.run("set-option", "-t", target, MARK, mark)
        self.run("set-option", "-t", target, SPEC, spec_hash)
        # The pane gets exactly ``env``: tmux would add its global environment (the environment
        # of whoever started the tmux server, perhaps the runner with its Slack tokens) and the
        # session's, so every other name there is marked removed (-r) for this session.
        inherited = self._env_names("-g") | self._env_names("-t", f"={name}")
        for key in sorted(inherited - set(env)):
            self.run("set-environment", "-t", f"={name}", "-r", key)
        for key, value in env.items():
            self.run("set-environment", "-t", f"={name}", key, value)
        self.run(
            "respawn-pane",
            "-k",
            "-t",
            target,
            "-c",
            literal_format(str(cwd)),
            *exec_argv(argv),
        )
        state = self.snapshot().get(name)
        if state is None:
            raise TmuxError(f"{name}: session vanished right after launch")
        return state

    def _env_names(self, *scope: str) -> set[str]:
        """Names set in a tmux environment (``-g`` or ``-t SESSION``); removed ones (``-NAME``)
        excluded. A line of a multi-line value may add a bogus name: removing it is harmless."""
        lines = self.run("show-environment", *scope, check=False)
        return {line.partition("=")[0] for line in lines if "=" in line and line[0] != "-"}

    def kill_session(self, name: str) -> None:
        self.run("kill-session", "-t", f"={name}", check=False)

    def pane(self, name: str, lock_file: Path) -> AgentPane:
        return AgentPane(self, name, lock_file)


class AgentPane:
    """The pane an agent's CLI runs in; the only way keystrokes reach an agent."""

    def __init__(self, server: TmuxServer, session: str, lock_file: Path) -> None:
        self.server = server
        self.session = session
        self.lock_file = lock_file

    @property
    def target(self) -> str:
        return f"={self.session}:"

    def capture(self) -> str:
        return "\n".join(self.server.run("capture-pane", "-p", "-t", self.target))

    def paste(
        self,
        text: str,
        *,
        submit: bool = True,
        pause: float = SUBMIT_PAUSE_S,
        shown: Shown | None = None,
        composer: Composer | None = None,
        settle: float = 0.0,
    ) -> PasteResult:
        """Paste ``text`` literally (bracketed paste from a named buffer), then Enter.

        Enter goes as soon as ``shown`` sees the paste in a capture of the pane (the CLI has
        taken it in, so Enter cannot become part of it); ``pause`` is then only the longest
        wait, for a screen the check does not recognise. Without ``shown``: a fixed ``pause``.
        After Enter the lock is held until the CLI shows it took it (its ``composer`` line
        changes; without one, anything on screen), at most :data:`SUBMIT_SETTLE_S`, so the next
        paste cannot reach the CLI in the same read as this Enter. Without Enter, ``settle``
        is the longest wait for the paste to change the screen (the key after it must not be
        read with it).

        The text must already be sanitised (see :mod:`bridge.lifecycle.steer`): control characters
        here would reach the CLI as keystrokes.
        """
        buffer = f"agentbridge-{uuid.uuid4().hex[:16]}"
        with pane_lock(self.lock_file):
            fd, tmp = tempfile.mkstemp(prefix=".paste-", dir=self.lock_file.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                self.server.run("load-buffer", "-b", buffer, tmp)
            finally:
                os.unlink(tmp)
            before = self.capture() if (submit and shown is not None) or settle else ""
            self.server.run("paste-buffer", "-p", "-d", "-b", buffer, "-t", self.target)
            if not submit and settle:
                self._await_change(before, settle)
            if submit:
                pasted: str | None = None
                if shown is None:
                    time.sleep(pause)
                else:
                    pasted = self._await_shown(before, text, shown, pause)
                    if pasted is None:
                        log.info(
                            "%s: the paste did not show on screen within %.2fs; "
                            "pressing Enter anyway",
                            self.session,
                            pause,
                        )
                pasted = pasted if pasted is not None else self.capture()
                self.server.run("send-keys", "-t", self.target, "Enter")
                self._await_change(pasted, SUBMIT_SETTLE_S, composer)
        return PasteResult(self.target, buffer, len(text), submit)

    def _await_shown(self, before: str, text: str, shown: Shown, longest: float) -> str | None:
        """Poll the pane until the paste shows (that capture) or ``longest`` seconds pass."""
        deadline = time.monotonic() + longest
        while True:
            screen = self.capture()
            if shown(before, screen, text):
                return screen
            if time.monotonic() >= deadline:
                return None
            time.sleep(SHOWN_POLL_S)

    def _await_change(self, screen: str, longest: float, part: Composer | None = None) -> None:
        """Poll the pane until it (``part`` of it) differs from ``screen``, or ``longest``
        seconds pass."""
        view: Composer = part or (lambda s: s)
        was = view(screen)
        deadline = time.monotonic() + longest
        while time.monotonic() < deadline and view(self.capture()) == was:
            time.sleep(SHOWN_POLL_S * 4)

    def send_key(self, key: str, *, settle: float = 0.0) -> None:
        """Send one named key (e.g. ``Escape``) under the same lock; with ``settle``, then wait
        (at most that long, still holding the lock) for the screen to change: input that reaches
        a busy CLI in one read is taken as one (an Escape glued to the paste after it)."""
        with pane_lock(self.lock_file):
            before = self.capture() if settle else ""
            self.server.run("send-keys", "-t", self.target, key)
            if settle:
                self._await_change(before, settle)


def literal_arg(arg: str) -> str:
    """``arg`` escaped so tmux's command parser hands it on unchanged.

    tmux (``cmd_parse_from_arguments``) takes an argument ending in ``;`` as the end of a
    command and turns a trailing ``\\;`` into ``;``; nothing else in an argument is special.
    So a trailing ``;`` gets one backslash before it, and only that.
    """
    return arg[:-1] + "\\;" if arg.endswith(";") else arg


def literal_format(value: str) -> str:
    """``value`` for an option tmux expands as a format (``-c``): ``#`` doubled, so a directory
    named ``a#{b}`` or ``#(cmd)`` is a name, not a lookup or a shell command."""
    return value.replace("#", "##")


def exec_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` as a pane command that tmux executes directly.

    tmux runs a one-word command through ``sh -c`` (so a binary path with a space, ``$`` or
    ``;`` would be split or expanded); two or more words go to ``execvp``. A one-word command is
    therefore wrapped in ``sh -c 'exec "$0"'``, which runs it as one word with no expansion.
    """
    if len(argv) == 1:
        return ["/bin/sh", "-c", 'exec "$0"', argv[0]]
    return list(argv)


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None
