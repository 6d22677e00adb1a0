"""Turning transcript events into Slack-ready messages.

Pure functions (no I/O, no clock): the mirror's output is reproducible from a transcript and
every rule is table-tested. Slack's mrkdwn is not Markdown (``*bold*``, ``<url|label>``, no
headings or tables, ``& < >`` sent as entities even in code), so :func:`gfm_to_mrkdwn`
translates the common subset of the agents' GitHub-flavoured Markdown. Every rendered text goes
through :func:`bridge.redact.redact`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.redact import redact
from runtimes.events import Event, EventKind

FENCE = "```"
# Where a zero-width space splits a run of 3+ backticks: Slack opens a block at any ```.
_FENCE_BREAK = re.compile(r"(?<=``)(?=`)")
# Stand-ins for rendered code spans and links; emphasis rules see them as punctuation.
_PH_OPEN, _PH_CLOSE = "\ue000", "\ue001"
_PH = re.compile(f"{_PH_OPEN}(\\d+){_PH_CLOSE}")


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack reserves for its own markup (``&``, ``<``, ``>``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code_text(text: str) -> str:
    """Escape text shown inside a code block; a literal ``` would end the block early."""
    return _FENCE_BREAK.sub("\u200b", escape_mrkdwn(text))


_BACKTICKS = re.compile(r"`+")
_ENTITY_AT = re.compile(r"&(?:[A-Za-z]{1,8}|#[0-9]{1,7});")
_LINK = re.compile(r"!?\[([^\[\]\n]*)\]\(([^()\s]+(?:\([^()\s]*\)[^()\s]*)*)(?:\s+\"[^\"\n]*\")?\)")
_AUTOLINK = re.compile(r"<((?:https?|mailto|ftp):[^\s<>|\ue000\ue001]+)>")
_BARE_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>`]*[^\s<>`.,;:!?)'\"*_~\]]")
_BACKSLASH = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~])")
# Content classes stop at the next closing marker, so an unclosed marker costs one scan to
# the next marker, not to the end of the line (linear time on any input).
_EMPHASIS = re.compile(
    r"\*\*\*(?=\S)(?P<bi>[^*\n]+?)(?<=\S)\*\*\*"
    r"|\*\*(?=\S)(?P<b>(?:[^*\n]|\*(?!\*))+?)(?<=\S)\*\*"
    r"|(?<!\w)__(?=\S)(?P<b2>(?:[^_\n]|_(?!_))+?)(?<=\S)__(?!\w|\.\w)"
    r"|(?<![\w*])\*(?=[^\s*])(?P<i>[^*\n]+?)(?<=[^\s*])\*(?![\w*])"
    r"|(?<!\w)_(?=[^\s_])(?P<i2>[^_\n]+?)(?<=[^\s_])_(?!\w|\.\w)"
    r"|~~(?=\S)(?P<s>(?:[^~\n]|~(?!~))+?)(?<=\S)~~"
)
_OPENER = {"bi": "*_", "b": "*", "b2": "*", "i": "_", "i2": "_", "s": "~"}  # closer: reversed


def _emphasis(m: re.Match[str]) -> str:
    group = m.lastgroup or ""  # exactly one named group matched, and groups do not nest
    return _OPENER[group] + _EMPHASIS.sub(_emphasis, m.group(group)) + _OPENER[group][::-1]


def _code_spans(text: str, stash: Callable[[str], str]) -> str:
    """Stash code spans (a backtick run closed by the next run as long); paired by hand, as a
    regex with a lazy body would rescan the line for every unclosed opener."""
    runs = [(m.start(), m.end()) for m in _BACKTICKS.finditer(text)]
    closer, seen = [-1] * len(runs), dict[int, int]()  # closer[k]: next run as long as run k
    for k in range(len(runs) - 1, -1, -1):
        closer[k], seen[runs[k][1] - runs[k][0]] = seen.get(runs[k][1] - runs[k][0], -1), k
    out, pos, k = [], 0, 0
    while k < len(runs):
        if (j := closer[k]) < 0:
            k += 1
            continue
        out += [text[pos : runs[k][0]], stash(f"`{_code_text(text[runs[k][1] : runs[j][0]])}`")]
        pos, k = runs[j][1], j + 1
    return "".join(out) + text[pos:]


def _inline(text: str) -> str:
    """Convert one line's inline Markdown: code spans, links, emphasis, escaping."""
    saved: list[str] = []

    def stash(rendered: str) -> str:
        saved.append(rendered)
        return f"{_PH_OPEN}{len(saved) - 1}{_PH_CLOSE}"

    def plain(part: str) -> str:  # placeholders survive: private-use chars are not escaped
        return _EMPHASIS.sub(_emphasis, escape_mrkdwn(part))

    def link(m: re.Match[str]) -> str:
        label, url = m.group(1).strip(), m.group(2)
        if ":" not in url.split("/", 1)[0]:  # a relative path: Slack cannot link it, so show it
            return stash(plain(label) + (f" ({escape_mrkdwn(url)})" if label != url else ""))
        url = url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
        return stash(f"<{url}|{plain(label)}>" if label and label != url else f"<{url}>")

    text = _AUTOLINK.sub(lambda m: stash(f"<{m.group(1)}>"), _code_spans(text, stash))
    text = _LINK.sub(link, text)
    text = _BARE_URL.sub(lambda m: stash(escape_mrkdwn(m.group(0))), text)
    text = _BACKSLASH.sub(lambda m: stash(escape_mrkdwn(m.group(1))), text)
    text = plain(text)
    while _PH.search(text):  # link labels may hold stashed code spans: restore until none left
        text = _PH.sub(lambda m: saved[int(m.group(1))], text)
    return _FENCE_BREAK.sub("\u200b", text)  # unpaired, or made by an escaped \`


_FENCE_OPEN = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")
_HR = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+(.*))?$")
_QUOTE = re.compile(r"^ {0,3}>[ \t]?(?:>[ \t]?)*(.*)$")
_BULLET = re.compile(r"^([ \t]*)[-*+][ \t]+(?:\[([ xX])\][ \t]+)?(.*)$")
_NUMBERED = re.compile(r"^([ \t]*)(\d{1,9})[.)][ \t]+(.*)$")
_TABLE_DELIM = re.compile(r"^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
_BOLD_MARKERS = re.compile(r"\*\*([^*]+)\*\*|__([^_]+)__")


def _block_line(line: str) -> str:
    """Convert one line outside code fences and tables."""
    if _HR.match(line):
        return "──────────"
    if m := _HEADING.match(line):
        title = (m.group(1) or "").rstrip()
        if title.rstrip("#") != title and title.rstrip("#")[-1:] in ("", " ", "\t"):
            title = title.rstrip("#").rstrip()  # closing hashes: "## Title ##"
        title = _BOLD_MARKERS.sub(lambda b: b.group(1) or b.group(2), title)
        return f"*{_inline(title)}*" if title else ""
    if m := _QUOTE.match(line):
        inner = _block_line(m.group(1))
        return f"> {inner}" if inner else ">"
    if m := _BULLET.match(line):
        box = {"": "", " ": "☐ "}.get(m.group(2) or "", "☑ ")
        return f"{m.group(1)}• {box}{_inline(m.group(3))}"
    if m := _NUMBERED.match(line):
        return f"{m.group(1)}{m.group(2)}. {_inline(m.group(3))}"
    return _inline(line)


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().removeprefix("|").removesuffix("|").split("|")]


def _table(rows: list[str]) -> list[str]:
    """A GFM table as an aligned code block: Slack has no tables, monospace keeps columns."""
    grid = [_cells(row) for row in rows[:1] + rows[2:]]
    n = len(grid[0])
    grid = [(row + [""] * n)[:n] for row in grid]  # GFM pads short rows, drops extra cells
    widths = [max(len(row[c]) for row in grid) for c in range(n)]
    lines = ["| " + " | ".join(map(str.ljust, row, widths)) + " |" for row in grid]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return [FENCE, *(_code_text(line.rstrip()) for line in lines), FENCE]


def gfm_to_mrkdwn(text: str) -> str:
    """Translate GitHub-flavoured Markdown to Slack mrkdwn (see the module docstring)."""
    text = text.replace("\r\n", "\n").replace(_PH_OPEN, "\ufffd").replace(_PH_CLOSE, "\ufffd")
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE_OPEN.match(line)
        if fence and not (fence.group(2)[0] == "`" and "`" in fence.group(3)):
            indent, marker = len(fence.group(1)), fence.group(2)
            closer = re.compile(rf"^ {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")
            out.append(FENCE)
            i += 1
            while i < len(lines) and not closer.match(lines[i]):
                strip = min(indent, len(lines[i]) - len(lines[i].lstrip(" ")))
                out.append(_code_text(lines[i][strip:]))
                i += 1
            out.append(FENCE)
            i += 1
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        same = "|" in line and "|" in nxt and len(_cells(line)) == len(_cells(nxt))
        if same and _TABLE_DELIM.match(nxt):
            end = i + 2
            while end < len(lines) and "|" in lines[end] and lines[end].strip():
                end += 1
            out.extend(_table(lines[i:end]))
            i = end
            continue
        out.append(_block_line(line))
        i += 1
    return "\n".join(out)


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


def _safe_cut(text: str, start: int, cut: int) -> int:
    """Move ``cut`` back out of a ``<...>`` link, an ``&...;`` entity, then a backtick run (in
    escaped mrkdwn ``<`` and ``&`` only open those; each move lands where earlier checks hold)."""
    lt = text.rfind("<", start, cut)
    if lt >= start and text.find(">", lt, cut) == -1 and text.find(">", cut) != -1:
        cut = lt
    amp = text.rfind("&", max(start, cut - 10), cut)
    if amp >= start and (m := _ENTITY_AT.match(text, amp)) and m.end() > cut:
        cut = amp
    while cut > start + 1 and text[cut - 1] == "`" and cut < len(text) and text[cut] == "`":
        cut -= 1
    return cut


def _find_cut(text: str, start: int, end: int, in_fence: bool) -> int:
    """End of the chunk from ``start``, at most ``end``: after a paragraph, line or space (in
    that order if past the first third of the window, else the latest), else hard. Never just
    after an opening fence (an empty code block): then before its backtick run, or hard."""
    if end >= len(text):
        return len(text)
    floor = start + (end - start) // 3
    found = [text.rfind(sep, start, end) + len(sep) for sep in ("\n\n", "\n", " ")]
    found = [cut for cut, sep in zip(found, (2, 1, 1), strict=True) if cut - sep >= start]
    found.sort(key=lambda c: (c <= floor, 0 if c > floor else -c))
    cut = next((s for c in [*found, end] if (s := _safe_cut(text, start, c)) > start), end)
    head = text[start:cut].rstrip("\n")
    if head.endswith(FENCE) and in_fence != (text.count(FENCE, start, cut) % 2 == 1):
        run = len(head) - len(head.rstrip("`"))
        cut = start + len(head) - run if len(head) > run else _safe_cut(text, start, end)
    return cut if cut > start else end


def split_message(text: str, limit: int = 3500) -> list[str]:
    """Split mrkdwn into chunks of at most ``limit`` chars, closing and reopening code fences."""
    if limit < 16:
        raise ValueError("limit must be at least 16")
    chunks: list[str] = []
    pos, in_fence = 0, False
    while pos < len(text):
        prefix = FENCE + "\n" if in_fence else ""
        for reserve in (0, 4):  # room for a closing fence, only if the first try needs one
            end = pos + limit - len(prefix) - reserve
            cut = _find_cut(text, pos, end, in_fence)
            piece = text[pos:cut]
            ends_in_fence = in_fence != (piece.count(FENCE) % 2 == 1)
            suffix = ("" if piece.endswith("\n") else "\n") + FENCE if ends_in_fence else ""
            if len(prefix) + len(piece) + len(suffix) <= limit:
                break
        chunks.append(prefix + piece + suffix)
        pos, in_fence = cut, ends_in_fence
    return chunks


_TERMINAL_NOISE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]"
)


@dataclass(frozen=True)
class Rendered:
    """A message ready to post: mrkdwn text, or (``as_file``) a file's content and name."""

    text: str
    as_file: bool = False
    filename: str | None = None


def _clean_output(text: str) -> str:
    """Terminal output as a reader saw it: no colour codes or control characters, and progress
    lines (rewritten with ``\\r``) collapsed to their last state."""
    lines = text.replace("\r\n", "\n").split("\n")
    return _TERMINAL_NOISE.sub("", "\n".join(line.rsplit("\r", 1)[-1] for line in lines))


def _redact_value(value: Any) -> Any:
    """Redact every string in a tool input before clipping (a cut token would not match)."""
    if isinstance(value, Mapping):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return redact(value) if isinstance(value, str) else value


_FILE_NAMES = {EventKind.USER_PROMPT: "prompt.md", EventKind.ASSISTANT_TEXT: "reply.md"}
_FILE_NAMES |= {EventKind.THINKING: "thinking.md", EventKind.TOOL_RESULT: "output.txt"}


def render_event(
    event: Event, *, show_thinking: bool = False, file_threshold: int = 12000
) -> Rendered | None:
    """How one event appears in Slack, or None for signals and hidden or empty content.

    Secrets are redacted from the raw text (unformatted, unclipped) and again from the result."""
    kind = event.kind
    if kind is EventKind.TOOL_CALL:
        args = _redact_value(dict(event.tool_input or {}))
        line = redact(tool_one_liner(event.tool, args, event.meta)).replace("`", "ˋ")
        return Rendered(redact(f"`{escape_mrkdwn(line)}`"))
    if kind is EventKind.COMPACTION:
        return Rendered(":compression: _Context compacted_")
    if kind not in _FILE_NAMES or (kind is EventKind.THINKING and not show_thinking):
        return None
    is_output = kind is EventKind.TOOL_RESULT
    raw = redact(_clean_output(event.text).strip("\n") if is_output else event.text.strip())
    if not raw and not (is_output and event.is_error):
        return None
    if len(raw) > file_threshold:
        return Rendered(raw, as_file=True, filename=_FILE_NAMES[kind])
    if is_output:
        body = f"{FENCE}\n{_code_text(shorten_output(raw))}\n{FENCE}" if raw else ""
        text = "\n".join(part for part in (":x: Error" if event.is_error else "", body) if part)
    elif kind is EventKind.THINKING:
        quoted = "\n".join(f"> {_code_text(line)}".rstrip() for line in raw.split("\n"))
        text = f":thought_balloon: _thinking_\n{quoted}"
    else:
        text = gfm_to_mrkdwn(raw)
        if kind is EventKind.USER_PROMPT:
            text = ":bust_in_silhouette:" + ("\n" if "\n" in text else " ") + text
    return Rendered(redact(text))
