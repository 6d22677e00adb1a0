"""One-line summaries of tool calls and shortened tool output, for the mirror.

Pure functions: a tool call becomes ``$ command``, ``Edit path`` or, for a call the runtime
marked as a question to the user, ``Asked: <question>`` (its own message carries the buttons);
long output keeps its head and tail with the omitted line count, so a thread stays readable.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from runtimes.events import ASKS_META

_SHELL_TOOLS = frozenset({"bash", "exec_command", "shell", "local_shell", "shell_command"})
_PATH_TOOLS = ("Edit", "Write", "Read", "MultiEdit", "NotebookEdit")
_ARG_TOOLS = {"Grep": "pattern", "Glob": "pattern", "WebFetch": "url", "WebSearch": "query"}
_ARG_TOOLS |= dict.fromkeys(("Task", "Agent"), "description prompt")
_ARG_TOOLS |= dict.fromkeys(_PATH_TOOLS, "file_path path notebook_path")
_COUNT_TOOLS = {"TodoWrite": ("todos", "item"), "update_plan": ("plan", "step")}
_PATCH_FILE = re.compile(r"^\*\*\* (?:Add|Update|Delete) File: ", re.MULTILINE)


def _clip(text: str, limit: int = 200) -> str:
    """First line of ``text``, with "…" when anything (further lines, or length) is cut."""
    lines = text.strip().splitlines()
    first = lines[0].rstrip() if lines else ""
    if len(first) > limit:
        return first[: limit - 1] + "…"
    return first + " …" if len(lines) > 1 else first


def _command_text(value: Any) -> str:
    """A shell command as text; Codex sends ``["bash", "-lc", "cmd"]`` argv lists."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        shell = len(value) == 3 and value[0].rsplit("/", 1)[-1] in ("bash", "sh", "zsh")
        return str(value[2]) if shell and value[1] in ("-c", "-lc") else shlex.join(value)
    return value if isinstance(value, str) else ""


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _size(value: Any) -> int:
    """How many items a parser-supplied count or collection stands for (0 if neither)."""
    sized = isinstance(value, list | tuple | set | frozenset | dict)
    return len(value) if sized else value if isinstance(value, int) else 0


def tool_one_liner(
    tool: str | None, tool_input: Mapping[str, Any] | None, meta: Mapping[str, Any]
) -> str:
    """One line saying what a tool call does (``$ cmd``, ``Edit path``); not escaped/redacted."""
    name = tool or "tool"
    args: Mapping[str, Any] = tool_input or {}

    def arg(*keys: str) -> str:
        values = [args[key] for key in keys if isinstance(args.get(key), str) and args[key]]
        return _clip(values[0]) if values else ""

    asked = meta.get(ASKS_META)
    if isinstance(asked, list) and asked:  # the runtime marked a question to the user
        more = f" (+{len(asked) - 1} more)" if len(asked) > 1 else ""
        return f"Asked: {_clip(str(asked[0]))}{more}"
    if name.lower() in _SHELL_TOOLS:
        return "$ " + _clip(_command_text(args.get("command", args.get("cmd"))))
    if name in _ARG_TOOLS:
        where = f" in {arg('path')}" if name in ("Grep", "Glob") and arg("path") else ""
        return f"{name} {arg(*_ARG_TOOLS[name].split())}{where}".rstrip()
    if name in _COUNT_TOOLS:
        key, noun = _COUNT_TOOLS[name]
        return f"{name} {_count(_size(args.get(key)), noun)}"
    if name == "apply_patch":  # the parser's file list or count, else the patch's file headers
        patch = args.get("input") or args.get("patch")
        headers = _PATCH_FILE.findall(patch) if isinstance(patch, str) else []
        return f"{name} {_count(_size(meta.get('files', headers)), 'file')}"
    shown = (f"{k}={_clip(v if isinstance(v, str) else repr(v), 40)}" for k, v in args.items())
    return _clip(f"{name}({', '.join(shown)})")


def _take(lines: list[str], count: int, budget: int) -> list[str]:
    """Up to ``count`` lines within ``budget`` chars; a first over-long line is cut to fit."""
    taken, used = list[str](), 0
    for line in lines[: max(count, 0)]:
        if (used := used + len(line) + 1) > budget:
            return taken or ([line[: budget - 1] + "…"] if budget > 1 else [])
        taken.append(line)
    return taken


def shorten_output(text: str, max_lines: int = 15, max_chars: int = 1500) -> str:
    """Keep the head and tail of long output: commands print context first and errors last."""
    text = text.rstrip("\n")
    lines = text.split("\n")
    if len(lines) <= max_lines and len(text) <= max_chars:
        return text
    head_count = max(1, max_lines * 2 // 3)
    head = _take(lines, head_count, max_chars * 2 // 3)
    budget = max_chars - sum(len(line) + 1 for line in head)
    # The tail is taken like the head, on reversed lines and characters, then turned back.
    backwards = [line[::-1] for line in reversed(lines[len(head) :])]
    tail = [line[::-1] for line in reversed(_take(backwards, max_lines - head_count, budget))]
    omitted = len(lines) - len(head) - len(tail)
    marker = [f"… {_count(omitted, 'line')} omitted …"] if omitted else []
    return "\n".join(head + marker + tail)
