"""Codex CLI: launch flags, session-id discovery, rollout location.

Codex mints its own session id and only creates the rollout when the first prompt arrives, so
the runner cannot know the transcript in advance. It finds it cheaply instead: the hook's
``transcript_path`` when hooks report, else a bounded scan of today's and yesterday's
``sessions/YYYY/MM/DD`` dirs for files newer than the launch whose ``session_meta`` names the
agent's cwd (read from a bounded prefix: line 1 embeds the instructions and is often > 20 KB).
A relaunch is ``codex resume <id>``, never ``--last``, which would pick another agent's session.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from runtimes.asks import WAIT_PREFIX, Ask, approval_ask
from runtimes.base import AskSupport, LaunchContext, LaunchPlan, TranscriptRef, cmdline_matches
from runtimes.canary import Canary, codex_canary
from runtimes.claude_screen import Key, Picker
from runtimes.codex_parse import parse_codex_line
from runtimes.codex_screen import composer as screen_composer
from runtimes.codex_screen import is_ready_screen as screen_ready
from runtimes.codex_signals import screen_events
from runtimes.events import Event, LineResult
from runtimes.limits import stop_failure_limit
from runtimes.paste import paste_shown
from runtimes.screen import fingerprint

HOOK_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "Stop",
    "PermissionRequest",
)
#: The oldest Codex seen firing PermissionRequest under approval_policy="on-request"
#: (0.136.0, 0.169.0 and 0.171.0 all do; docs/cli-signals.md d).
ASK_MIN_VERSION = (0, 136, 0)
_PREFIX_BYTES = 64 * 1024
_CWD = re.compile(rb'"cwd"\s*:\s*"((?:[^"\\]|\\.)*)"')
_ID = re.compile(rb'"id"\s*:\s*"([0-9a-fA-F-]{36})"')
_FILE_ID = re.compile(r"rollout-.*-([0-9a-fA-F]{8}-[0-9a-fA-F-]{27})\.jsonl$")


def toml_str(value: str) -> str:
    """A TOML basic string (JSON's escaping is a valid subset for these characters)."""
    return json.dumps(value)


#: How Codex draws a long paste in its composer (runtimes/paste.py).
_PASTE_PLACEHOLDER = re.compile(r"\[Pasted Content \d+ chars\]")


class CodexRuntime:
    name = "codex"
    default_bin = "codex"
    self_compacts = True
    #: A fresh Codex fires SessionStart only with the first prompt (FORMATS.md).
    announces_launch = False
    #: Codex treats an Enter within ~100 ms of fast input as part of the paste (FORMATS.md).
    submit_pause = 0.3

    @staticmethod
    def home(env: Mapping[str, str]) -> Path:
        configured = env.get("CODEX_HOME")
        return Path(configured).expanduser() if configured else Path("~/.codex").expanduser()

    def probe_version(self, bin: str) -> str:
        out = subprocess.run(
            [bin, "--version"], capture_output=True, text=True, timeout=60, check=False
        )
        if out.returncode != 0:
            raise RuntimeError(f"{bin} --version exited {out.returncode}: {out.stderr.strip()}")
        return out.stdout.strip().split()[-1] if out.stdout.strip() else ""

    def prepare(self, ctx: LaunchContext) -> None:
        self.home(ctx.env).mkdir(parents=True, exist_ok=True)

    def flags(self, ctx: LaunchContext) -> list[str]:
        workdir = os.path.realpath(ctx.workdir)
        flags = [
            "--no-alt-screen",
            *self.permission_flags(ctx),
            "--dangerously-bypass-hook-trust",
            "-c",
            f'projects={{{toml_str(workdir)}={{trust_level="trusted"}}}}',
            "-c",
            "notice.hide_rate_limit_model_nudge=true",
            # An "update available" screen would block a headless pane after a release.
            "-c",
            "check_for_update_on_startup=false",
        ]
        if ctx.hook_command:
            for event in HOOK_EVENTS:
                timeout = 5
                command = toml_str(f"{ctx.hook_command} {event}")
                if event == "PermissionRequest" and ctx.permissions == "ask":
                    # The one blocking hook: it holds the approval until a person answers.
                    timeout = ctx.ask_timeout_s
                    command = toml_str(f"{ctx.hook_command} {WAIT_PREFIX}{event}")
                flags += [
                    "-c",
                    f'hooks.{event}=[{{hooks=[{{type="command",command={command},'
                    f"timeout={timeout}}}]}}]",
                ]
        if ctx.model:
            flags += ["-m", ctx.model]
        return flags

    @staticmethod
    def permission_flags(ctx: LaunchContext) -> list[str]:
        """Bypass everything, or (``permissions: ask``) ask before escalating out of the
        workspace sandbox, which fires the PermissionRequest hook (cli-signals.md d)."""
        if ctx.permissions != "ask":
            return ["--dangerously-bypass-approvals-and-sandbox"]
        return ["-c", 'approval_policy="on-request"', "-c", 'sandbox_mode="workspace-write"']

    def parse_picker(self, screen: str) -> Picker | None:
        """Codex's questions are not relayed (docs/questions.md): no picker is read."""
        return None

    def picker_keys(self, picker: Picker, value: str) -> tuple[Key, ...]:
        return ()

    def parse_ask(self, event: str, payload: dict[str, Any]) -> Ask | None:
        """Approvals only: Codex's ``request_user_input`` is unavailable in its default mode,
        and whether a hook can answer it is unverified (docs/questions.md).

        No session rule (so no "Always allow this session"): Codex's ``PermissionRequest``
        hook takes no ``updatedPermissions`` (0.136.0 and 0.171.0 reject it as "unsupported
        updatedPermissions", drop the hook's decision and draw their own approval prompt), and
        the rule its own prompt offers is a command *prefix*, more than the command shown."""
        return approval_ask(event, payload) if event == "PermissionRequest" else None

    def ask_conflict(self, args: Sequence[str]) -> str | None:
        for flag in ("--dangerously-bypass-approvals-and-sandbox", "--yolo", "--full-auto"):
            if flag in args:
                return f"args has {flag}, which bypasses the approvals permissions: ask relays"
        for key in ("approval_policy", "sandbox_mode", "ask_for_approval"):
            if any(a.startswith(key) for a in args):
                return f"args sets {key}, which permissions: ask sets itself"
        if any(a in ("-a", "--ask-for-approval", "-s", "--sandbox") for a in args):
            return "args sets the approval or sandbox mode, which permissions: ask sets itself"
        return None

    def ask_support(self, version: str | None) -> AskSupport:
        match = re.search(r"(\d+)\.(\d+)\.(\d+)", version or "")
        found = tuple(int(g) for g in match.groups()) if match else None
        if found is not None and found < ASK_MIN_VERSION:
            why = (
                f"codex {version} is older than the first Codex seen with a PermissionRequest "
                f"hook ({'.'.join(map(str, ASK_MIN_VERSION))})"
            )
            return AskSupport(questions=False, approvals=False, why_not=why)
        return AskSupport(questions=False, approvals=True)

    def plan_launch(self, ctx: LaunchContext) -> LaunchPlan:
        flags = [*self.flags(ctx), *ctx.extra_args]
        sid = ctx.known_session_id
        if ctx.resume and sid and self.rollout_for(ctx.env, sid) is not None:
            return LaunchPlan(argv=(ctx.bin, "resume", sid, *flags), session_id=sid, resumed=True)
        return LaunchPlan(argv=(ctx.bin, *flags), session_id=None, resumed=False)

    def is_agent_process(self, cmdline: list[str], bin: str) -> bool:
        return cmdline_matches(cmdline, bin, "codex")

    # -- discovery ----------------------------------------------------------------------

    def rollout_for(self, env: Mapping[str, str], session_id: str) -> Path | None:
        """The rollout of a known session: Codex's own thread index first, then a glob."""
        home = self.home(env)
        for db in sorted(home.glob("state_*.sqlite"), reverse=True):
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
                    row = conn.execute(
                        "SELECT rollout_path FROM threads WHERE id = ?", (session_id,)
                    ).fetchone()
            except sqlite3.Error:
                continue
            if row and row[0] and Path(row[0]).exists():
                return Path(row[0])
        hits = sorted((home / "sessions").glob(f"*/*/*/rollout-*-{session_id}.jsonl"))
        return hits[-1] if hits else None

    def find_transcript(
        self, ctx: LaunchContext, session_id: str | None, launched_at: datetime
    ) -> TranscriptRef | None:
        if session_id:
            path = self.rollout_for(ctx.env, session_id)
            return TranscriptRef(path, session_id) if path else None
        return scan_rollouts(self.home(ctx.env), Path(os.path.realpath(ctx.workdir)), launched_at)

    def is_ready_screen(self, screen: str) -> bool:
        # The composer line starts with "›" (its placeholder text varies); a picker's cursor
        # does too, and is not one (runtimes/codex_screen.py).
        return screen_ready(screen)

    def paste_shown(self, before: str, after: str, text: str) -> bool:
        return paste_shown(before, after, text, _PASTE_PLACEHOLDER)

    def composer(self, screen: str) -> str | None:
        return screen_composer(screen)

    model_api = "openai"

    def offline(self, home: Path, model_url: str) -> tuple[dict[str, str], list[str]]:
        provider = (
            f'model_providers.fake={{name="fake",base_url={toml_str(model_url + "/v1")},'
            'env_key="FAKE_KEY",wire_api="responses"}'
        )
        env = {"CODEX_HOME": str(home / "codex"), "FAKE_KEY": "offline"}
        return env, ["-c", provider, "-c", "model_provider=fake", "-m", "gpt-5"]

    def canary(self, plan: LaunchPlan) -> Canary:
        return codex_canary(plan.argv)

    def transcript_roots(self, ctx: LaunchContext) -> list[Path]:
        return [self.home(ctx.env) / "sessions"]

    def parse_line(self, line: bytes, offset: int, source: str) -> LineResult:
        return parse_codex_line(line, offset, source)

    #: Esc interrupts a Codex turn ("■ Conversation interrupted"), as the footer says.
    interrupt_key = "Escape"

    def hook_events(self, event: str, payload: dict[str, Any]) -> tuple[Event, ...]:
        """None from the pinned releases (no hook fires at a limit); a ``StopFailure`` from a
        later release (openai/codex main has it, same payload as Claude's) is understood."""
        return stop_failure_limit(event, payload)

    def screen_events(self, screen: str, now: float) -> tuple[Event, ...]:
        return screen_events(screen, now)

    def screen_fingerprint(self, screen: str) -> str:
        return fingerprint(screen, "•◦⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")


def _day_dirs(sessions: Path, launched_at: datetime) -> Iterable[Path]:
    local = launched_at.astimezone()
    for day in (local, local - timedelta(days=1), local + timedelta(days=1)):
        yield sessions / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"


_META_CACHE: dict[str, tuple[str | None, str | None]] = {}


def read_meta_prefix(path: Path) -> tuple[str | None, str | None]:
    """(cwd, session id) from a bounded prefix of line 1, without parsing the whole line.

    A rollout's first line never changes once written, so complete answers are cached: scans
    repeat while a fresh Codex has not been prompted yet.
    """
    cached = _META_CACHE.get(str(path))
    if cached is not None:
        return cached
    result = _read_meta_prefix(path)
    if result[0] is not None and result[1] is not None:
        if len(_META_CACHE) > 20_000:
            _META_CACHE.clear()
        _META_CACHE[str(path)] = result
    return result


def _read_meta_prefix(path: Path) -> tuple[str | None, str | None]:
    try:
        with path.open("rb") as fh:
            head = fh.read(_PREFIX_BYTES)
    except OSError:
        return None, None
    cwd_match = _CWD.search(head)
    id_match = _ID.search(head)
    cwd = json.loads(b'"' + cwd_match.group(1) + b'"') if cwd_match else None
    return cwd, id_match.group(1).decode() if id_match else None


def scan_rollouts(home: Path, workdir: Path, launched_at: datetime) -> TranscriptRef | None:
    """The earliest rollout created since ``launched_at`` for ``workdir``; bounded work."""
    threshold = launched_at.timestamp() - 2
    candidates: list[tuple[float, Path]] = []
    for day in _day_dirs(home / "sessions", launched_at):
        try:
            entries = list(os.scandir(day))
        except OSError:
            continue
        for entry in entries:
            if not entry.name.endswith(".jsonl"):
                continue
            try:
                mtime = entry.stat().st_mtime
            except OSError:
                continue
            if mtime >= threshold:
                candidates.append((mtime, Path(entry.path)))
    want = str(workdir)
    for _, path in sorted(candidates):
        cwd, sid = read_meta_prefix(path)
        if cwd is None or os.path.realpath(cwd) != want:
            continue
        match = _FILE_ID.search(path.name)
        sid = sid or (match.group(1) if match else None)
        if sid:
            return TranscriptRef(path, sid)
    return None
