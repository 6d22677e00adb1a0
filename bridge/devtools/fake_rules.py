"""The script both fake model servers follow: prompt directives, canned replies, limit windows.

A directive is a word in the newest human prompt. `RUN:`, `USAGE:`, `SLOW:` shape ordinary
answers; `LIMIT:`, `LIMITWARN:`, `STALL:`, `ASK:`/`ASKMULTI:`, `APPROVE:` (with `TWICE`: the same
call again after its result) and `WRITE:` reproduce what the real APIs do at an account limit, on
a stalled stream, and when the model asks the user something, runs a command that needs approval
or writes a file. docs/cli-signals.md records what the real CLIs do with each.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

_RUN_RE = re.compile(r"RUN:[ \t]*(\S[^\r\n]*)")
_USAGE_RE = re.compile(r"USAGE:[ \t]*(\d+)")
_SLOW_RE = re.compile(r"SLOW:[ \t]*(\d+(?:\.\d+)?)")
_LIMIT_RE = re.compile(r"(?<![A-Za-z])LIMIT:[ \t]*(\d+(?:\.\d+)?)")
_LIMITWARN_RE = re.compile(r"LIMITWARN:[ \t]*(\d+(?:\.\d+)?)")
_STALL_RE = re.compile(r"STALL:[ \t]*(\d+(?:\.\d+)?)")
_ASK_RE = re.compile(r"ASK(MULTI)?:[ \t]*(\S[^\r\n]*)")
_APPROVE_RE = re.compile(r"APPROVE:[ \t]*(\S[^\r\n]*)")
_WRITE_RE = re.compile(r"WRITE:[ \t]*(/[^|\r\n]+)\|([^\r\n]*)")
_TWICE_RE = re.compile(r"\bTWICE\b")

QUESTION_TOOLS = ("AskUserQuestion", "request_user_input")
"""Tool names the fakes use to ask the user something (Claude, Codex)."""


def one_line(text: str, limit: int = 200) -> str:
    """Fold a prompt onto one line so an `ack:` reply is easy to find on screen and in files."""
    return " ".join(text[:limit].split())


def tool_text(output: str) -> str:
    """A tool's output without Codex's `Chunk ID/Wall time/...` preamble."""
    marker = "\nOutput:\n"
    return output.split(marker, 1)[1] if marker in output else output


def first_output_line(output: str) -> str:
    """First non-empty line of a tool's output."""
    for line in tool_text(output).splitlines():
        if line.strip():
            return line.strip()
    return ""


@dataclass
class Reply:
    """One canned model answer: text, a shell command, or a question for the user."""

    text: str = ""
    command: str | None = None
    usage: int | None = None
    delay: float = 0.0
    approve: bool = False
    """`command` asks for approval (Codex: `sandbox_permissions: require_escalated`)."""
    questions: list[dict[str, Any]] | None = None
    """Ask the user (Claude `AskUserQuestion`, Codex `request_user_input`)."""
    write: tuple[str, str] | None = None
    """Write a file: (absolute path, content) (Claude's `Write` tool; a file edit that
    `permissions: ask` asks about)."""
    stall: float = 0.0
    """Seconds of silence after the stream's first events."""
    warn_percent: float | None = None
    """Report this share of the usage limit as used on the answer's headers."""


@dataclass
class Turn:
    """What the script needs to know about one request, extracted by the API-specific parser."""

    kind: str
    """`turn` (new human prompt), `tool_result`, `compact`, `side` (no tools: titles etc.)."""
    prompt: str | None = None
    """Newest human prompt in the conversation (also set for tool results: directives persist)."""
    tool_output: str | None = None
    tool_command: str | None = None
    tool_name: str | None = None
    history_prompts: int = 0
    """How many human prompts the request carries; tells a retry apart from a repeated prompt."""
    results_in_turn: int = 0
    """Tool results since the newest human prompt (`TWICE` runs its command a second time)."""


def parse_questions(spec: str, multi: bool) -> list[dict[str, Any]]:
    """`question|opt1|opt2...` as one `AskUserQuestion` question (2-4 options for Claude)."""
    parts = [p.strip() for p in spec.split("|")]
    question, labels = parts[0], [p for p in parts[1:] if p]
    words = re.findall(r"[A-Za-z0-9]+", question)
    header = (words[0] if words else "Question")[:12]
    options = [{"label": label, "description": f"option {label}"} for label in labels]
    return [{"question": question, "header": header, "options": options, "multiSelect": multi}]


def warn_percent(prompt: str) -> float | None:
    match = _LIMITWARN_RE.search(prompt)
    return float(match.group(1)) if match else None


def limit_directive(prompt: str) -> tuple[str, float] | None:
    """(`LIMIT:<s>` as written, seconds) when the prompt asks for a usage-limit window. The last
    one counts: Claude sends a prompt that failed at the limit again with the next one."""
    matches = list(_LIMIT_RE.finditer(prompt))
    if not matches:
        return None
    match = matches[-1]
    return f"LIMIT:{match.group(1)}", float(match.group(1))


def decide(turn: Turn, default_usage: int) -> Reply:
    """Apply the prompt directives; the fakes share this rulebook."""
    prompt = turn.prompt or ""
    usage_match = _USAGE_RE.search(prompt)
    usage = int(usage_match.group(1)) if usage_match else default_usage
    warn = warn_percent(prompt)
    if turn.kind == "tool_result":
        output = turn.tool_output or ""
        if turn.tool_name in QUESTION_TOOLS:
            return Reply(text=f"answered: {one_line(output, 500)}", usage=usage, warn_percent=warn)
        approve = _APPROVE_RE.search(prompt)
        if approve and _TWICE_RE.search(prompt) and turn.results_in_turn == 1:
            # the same call again in the same turn: a new request, asked anew
            return Reply(command=approve.group(1).strip(), approve=True, usage=usage)
        if approve:
            text = f"result: {one_line(tool_text(output), 500)}"
            return Reply(text=text, usage=usage, warn_percent=warn)
        cmd = turn.tool_command or ""
        run = _RUN_RE.search(prompt)
        if not cmd and run:
            cmd = run.group(1).strip()
        text = f"ran: {cmd} -> {first_output_line(output)}"
        return Reply(text=text, usage=usage, warn_percent=warn)
    slow = _SLOW_RE.search(prompt)
    stall = _STALL_RE.search(prompt)
    base = Reply(
        usage=usage,
        delay=float(slow.group(1)) if slow else 0.0,
        stall=float(stall.group(1)) if stall else 0.0,
        warn_percent=warn,
    )
    if ask := _ASK_RE.search(prompt):
        base.questions = parse_questions(ask.group(2), multi=bool(ask.group(1)))
    elif approve := _APPROVE_RE.search(prompt):
        base.command, base.approve = approve.group(1).strip(), True
    elif write := _WRITE_RE.search(prompt):
        base.write = (write.group(1).strip(), write.group(2).replace("\\n", "\n"))
        base.text = f"ack: {one_line(prompt)}"  # the Codex fake has no Write tool: it answers
    elif run := _RUN_RE.search(prompt):
        base.command = run.group(1).strip()
    else:
        base.text = f"ack: {one_line(prompt)}"
    return base


@dataclass
class LimitBook:
    """Usage-limit windows, kept in the server so a CLI's retries stay limited until the window
    passes: each distinct `LIMIT:<s>` directive opens its window at the first request that
    carries it; `force(s)` opens one for the next main request whatever its prompt."""

    _windows: dict[str, float] = field(default_factory=dict)
    _forced: float | None = None
    _forced_until: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def force(self, seconds: float) -> None:
        with self._lock:
            self._forced, self._forced_until = seconds, None

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()
            self._forced = self._forced_until = None

    def reset_at(self, prompt: str, now: float) -> float | None:
        """When the limit this request hits resets (epoch s), or None if it is not limited."""
        with self._lock:
            if self._forced is not None:
                if self._forced_until is None:
                    self._forced_until = now + self._forced
                if now < self._forced_until:
                    return self._forced_until
                self._forced = self._forced_until = None
            directive = limit_directive(prompt)
            if directive is None:
                return None
            key, seconds = directive
            until = self._windows.setdefault(key, now + seconds)
            return until if now < until else None


def schema_answer(schema: Any, text: str = "Fake session") -> str:
    """Side calls (session titles) ask for structured output; give the smallest valid object so
    the CLI's parser is satisfied rather than logging an error."""

    def value(node: Any) -> Any:
        kind = node.get("type") if isinstance(node, dict) else None
        if kind == "object":
            props = node.get("properties") or {}
            return {k: value(props.get(k)) for k in node.get("required") or list(props)}
        if kind == "array":
            return []
        if kind == "boolean":
            return False
        if kind in ("integer", "number"):
            return 0
        if kind == "null":
            return None
        return text

    return json.dumps(value(schema))
