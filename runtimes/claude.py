"""Claude Code: launch flags, first-run pre-answers, transcript location.

Identity is fixed before launch: ``--session-id <KANBAN_SESSION_ID>`` names the transcript file,
so the runner knows where to tail before Claude writes a byte, and a relaunch is
``--resume <id>`` on that same file. Hooks and the permission-warning skip go in ``--settings``
(a JSON string) so nothing is written into the work tree or the user's settings files.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from runtimes.asks import WAIT_PREFIX, Ask, approval_ask, question_ask
from runtimes.base import AskSupport, LaunchContext, LaunchPlan, TranscriptRef, cmdline_matches
from runtimes.canary import Canary, claude_canary
from runtimes.claude_features import (
    auto_compact_window,
    cli_version,
    has_interrupt_hook,
    version_tuple,
)
from runtimes.claude_parse import parse_claude_line
from runtimes.claude_rules import session_rule
from runtimes.claude_screen import Key, Picker, parse_picker, picker_keys
from runtimes.claude_signals import hook_events, screen_events
from runtimes.events import Event, LineResult
from runtimes.jsonfile import merge_json
from runtimes.paste import composer_line, paste_shown
from runtimes.screen import fingerprint

#: Hook events the runner subscribes to (issue: agent lifecycle).
HOOK_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "Notification",
    "Stop",
    "PreCompact",
    "SessionEnd",
    "StopFailure",  # a turn that ended on an API error (a usage limit); informational only
)

#: Hook events registered only where the CLI has them (runtimes/claude_features.py).
INTERRUPT_EVENT = "Interrupt"

#: Claude's spinner glyphs (the working line animates through them).
SPINNER = "✻✶✳✢·*✽⏺●"


#: The oldest Claude whose question and approval hooks were verified (docs/cli-signals.md).
ASK_MIN_VERSION = (2, 1, 328)


def _hook(command: str, timeout: int) -> dict[str, Any]:
    return {"type": "command", "command": command, "timeout": timeout}


def _approval_hook(command: str, timeout: int) -> dict[str, Any]:
    """The hook that carries a person's approval: if it fails (cannot start, times out, dies,
    prints something unreadable) Claude must block the call, not draw its own permission
    dialog in a pane nobody watches (``onFailure: "block"``, in the settings schema of 2.1.332
    and 2.1.337; seen denying on 2.1.332): failing closed. The question hook keeps Claude's
    default: a failed one leaves the question picker, which the pane fallback relays."""
    return {**_hook(command, timeout), "onFailure": "block"}


#: How Claude draws a long paste in its composer (runtimes/paste.py).
_PASTE_PLACEHOLDER = re.compile(r"\[Pasted text #\d+[^\]]*\]")


class ClaudeRuntime:
    name = "claude"
    default_bin = "claude"
    self_compacts = False
    announces_launch = True
    #: Claude reads bracketed paste as one block; a short gap before Enter is enough.
    submit_pause = 0.1

    # -- files -------------------------------------------------------------------------

    @staticmethod
    def config_dir(env: dict[str, str] | Any) -> Path:
        configured = env.get("CLAUDE_CONFIG_DIR")
        return Path(configured).expanduser() if configured else Path("~/.claude").expanduser()

    @staticmethod
    def global_config(env: dict[str, str] | Any) -> Path:
        """``$CLAUDE_CONFIG_DIR/.claude.json``, or ``~/.claude.json`` when unset."""
        configured = env.get("CLAUDE_CONFIG_DIR")
        if configured:
            return Path(configured).expanduser() / ".claude.json"
        return Path("~/.claude.json").expanduser()

    def transcript_path(self, ctx: LaunchContext, session_id: str) -> Path | None:
        """The transcript for ``session_id``, wherever Claude's cwd munging put it."""
        projects = self.config_dir(ctx.env) / "projects"
        hits = sorted(projects.glob(f"*/{session_id}.jsonl"))
        return hits[0] if hits else None

    # -- launch -------------------------------------------------------------------------

    def probe_version(self, bin: str) -> str:
        out = subprocess.run(
            [bin, "--version"], capture_output=True, text=True, timeout=60, check=False
        )
        if out.returncode != 0:
            raise RuntimeError(f"{bin} --version exited {out.returncode}: {out.stderr.strip()}")
        return out.stdout.strip().split()[0] if out.stdout.strip() else ""

    def prepare(self, ctx: LaunchContext) -> None:
        workdir = str(Path(os.path.realpath(ctx.workdir)))
        key = ctx.env.get("ANTHROPIC_API_KEY", "")

        def update(data: dict[str, Any]) -> bool:
            changed = False
            if data.get("hasCompletedOnboarding") is not True:
                data["hasCompletedOnboarding"] = True
                changed = True
            if "theme" not in data:
                data["theme"] = "dark"
                changed = True
            if key:
                responses = data.setdefault("customApiKeyResponses", {})
                approved = responses.setdefault("approved", [])
                responses.setdefault("rejected", [])
                if key[-20:] not in approved:
                    approved.append(key[-20:])
                    changed = True
            projects = data.setdefault("projects", {})
            project = projects.setdefault(workdir, {})
            if project.get("hasTrustDialogAccepted") is not True:
                project["hasTrustDialogAccepted"] = True
                changed = True
            return changed

        merge_json(self.global_config(ctx.env), update)

    def settings(self, ctx: LaunchContext) -> dict[str, Any]:
        """``--settings``: the relay hooks, the status line, and the blocking hooks that carry a
        person's answer: ``AskUserQuestion`` always (its picker waits even when permissions
        are bypassed), ``PermissionRequest`` only under ``permissions: ask``. ``Interrupt``
        (who stopped a turn) and the auto-compact offer's pre-answer: see claude_features."""
        settings: dict[str, Any] = {"skipDangerousModePermissionPrompt": True}
        window = auto_compact_window(ctx.env, self.config_dir(ctx.env), Path(ctx.workdir))
        if window is not None:
            settings["autoCompactWindow"] = window
        if ctx.hook_command:
            events = list(HOOK_EVENTS)
            if has_interrupt_hook(cli_version(ctx.bin)):
                events.append(INTERRUPT_EVENT)  # relayed like the others: fast, never blocks
            hooks: dict[str, list[dict[str, Any]]] = {
                event: [{"hooks": [_hook(f"{ctx.hook_command} {event}", 10)]}] for event in events
            }
            wait = f"{ctx.hook_command} {WAIT_PREFIX}"
            if ctx.ask_hook:
                hooks["PreToolUse"].append(
                    {
                        "matcher": "AskUserQuestion",
                        "hooks": [_hook(f"{wait}PreToolUse", ctx.ask_timeout_s)],
                    }
                )
            if ctx.permissions == "ask":
                hooks["PermissionRequest"] = [
                    {"hooks": [_approval_hook(f"{wait}PermissionRequest", ctx.ask_timeout_s)]}
                ]
            settings["hooks"] = hooks
            settings["statusLine"] = {
                "type": "command",
                "command": f"{ctx.hook_command} statusline",
            }
        return settings

    def permission_args(self, ctx: LaunchContext) -> list[str]:
        if ctx.permissions == "ask":
            return ["--permission-mode", ctx.permission_mode]
        return ["--dangerously-skip-permissions"]

    def parse_picker(self, screen: str) -> Picker | None:
        return parse_picker(screen)

    def picker_keys(self, picker: Picker, value: str) -> tuple[Key, ...]:
        return picker_keys(picker, value)

    def parse_ask(self, event: str, payload: dict[str, Any]) -> Ask | None:
        if event == "PreToolUse":
            return question_ask(event, payload)
        if event == "PermissionRequest":
            ask = approval_ask(event, payload)
            return replace(ask, session_rule=session_rule(ask)) if ask is not None else None
        return None

    def ask_conflict(self, args: Sequence[str]) -> str | None:
        for flag in ("--dangerously-skip-permissions", "--permission-mode"):
            if any(a == flag or a.startswith(flag + "=") for a in args):
                return f"args has {flag}, which permissions: ask sets itself"
        return None

    def ask_support(self, version: str | None) -> AskSupport:
        found = version_tuple(version)
        if found is not None and found < ASK_MIN_VERSION:
            why = (
                f"claude {version} predates the verified PermissionRequest hook "
                f"(needs {'.'.join(map(str, ASK_MIN_VERSION))} or newer)"
            )
            return AskSupport(questions=False, approvals=False, why_not=why)
        return AskSupport(questions=True, approvals=True)

    def plan_launch(self, ctx: LaunchContext) -> LaunchPlan:
        session_id = ctx.known_session_id or ctx.agent_id
        exists = self.transcript_path(ctx, session_id) is not None
        if exists and ctx.resume:
            session_args = ["--resume", session_id]
            resumed = True
        else:
            if exists:  # resume: false, but that id's file is taken: start a new session
                session_id = str(uuid.uuid4())
            session_args = ["--session-id", session_id]
            resumed = False
        argv = [ctx.bin, *session_args]
        if ctx.model:
            argv += ["--model", ctx.model]
        argv += [
            *self.permission_args(ctx),
            "--settings",
            json.dumps(self.settings(ctx), separators=(",", ":")),
            *ctx.extra_args,
        ]
        return LaunchPlan(argv=tuple(argv), session_id=session_id, resumed=resumed)

    def is_agent_process(self, cmdline: list[str], bin: str) -> bool:
        return cmdline_matches(cmdline, bin, "claude")

    def find_transcript(
        self, ctx: LaunchContext, session_id: str | None, launched_at: datetime
    ) -> TranscriptRef | None:
        sid = session_id or ctx.agent_id
        path = self.transcript_path(ctx, sid)
        return TranscriptRef(path, sid) if path else None

    def is_ready_screen(self, screen: str) -> bool:
        lowered = screen.lower()
        # The footer names the mode: "bypass permissions on", or under ``permissions: ask``
        # "? for shortcuts" / "manual mode on" / "accept edits on" (2.1.328 and 2.1.332).
        modes = ("bypass permissions", "for shortcuts", "manual mode", "accept edits", "plan mode")
        return any(m in lowered for m in modes) and "esc to interrupt" not in lowered

    def paste_shown(self, before: str, after: str, text: str) -> bool:
        return paste_shown(before, after, text, _PASTE_PLACEHOLDER)

    def composer(self, screen: str) -> str | None:
        return composer_line(screen, "❯")

    model_api = "anthropic"

    def offline(self, home: Path, model_url: str) -> tuple[dict[str, str], list[str]]:
        env = {
            "CLAUDE_CONFIG_DIR": str(home / "claude"),
            "ANTHROPIC_BASE_URL": model_url,
            "ANTHROPIC_API_KEY": "sk-ant-offline-000000000000000000000",
            "IS_SANDBOX": "1",  # --dangerously-skip-permissions as root (sandboxes only)
            "DISABLE_AUTOUPDATER": "1",  # it would install a newer CLI system-wide
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "XDG_DATA_HOME": str(home / "xdg-data"),  # keeps its URL handler out of ~
        }
        return env, []

    def canary(self, plan: LaunchPlan) -> Canary:
        return claude_canary(plan.argv)

    def transcript_roots(self, ctx: LaunchContext) -> list[Path]:
        return [self.config_dir(ctx.env) / "projects"]

    def parse_line(self, line: bytes, offset: int, source: str) -> LineResult:
        return parse_claude_line(line, offset, source)

    #: Escape stops Claude's turn ("Interrupted · What should Claude do instead?").
    interrupt_key = "Escape"

    def hook_events(self, event: str, payload: dict[str, Any]) -> tuple[Event, ...]:
        return hook_events(event, payload)

    def screen_events(self, screen: str, now: float) -> tuple[Event, ...]:
        return screen_events(screen, now)

    def screen_fingerprint(self, screen: str) -> str:
        return fingerprint(screen, SPINNER)
