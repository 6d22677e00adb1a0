"""Slack mrkdwn from the agents' GitHub-flavoured Markdown.

Pure functions (no I/O, no clock), table-tested. Slack's mrkdwn is not Markdown (``*bold*``,
``<url|label>``, no headings or tables, ``& < >`` sent as entities even in code), so
:func:`gfm_to_mrkdwn` translates the common subset the agents write.
"""

from __future__ import annotations

import re
from collections.abc import Callable

FENCE = "```"
# Where a zero-width space splits a run of 3+ backticks: Slack opens a block at any ```.
_FENCE_BREAK = re.compile(r"(?<=``)(?=`)")
# Stand-ins for rendered code spans and links; emphasis rules see them as punctuation.
_PH_OPEN, _PH_CLOSE = "\ue000", "\ue001"
_PH = re.compile(f"{_PH_OPEN}(\\d+){_PH_CLOSE}")


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack reserves for its own markup (``&``, ``<``, ``>``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code_text(text: str) -> str:
    """Escape text shown inside a code block; a literal ``` would end the block early."""
    return _FENCE_BREAK.sub("\u200b", escape_mrkdwn(text))


_BACKTICKS = re.compile(r"`+")
ENTITY_AT = re.compile(r"&(?:[A-Za-z]{1,8}|#[0-9]{1,7});")
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
        out += [text[pos : runs[k][0]], stash(f"`{code_text(text[runs[k][1] : runs[j][0]])}`")]
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
    return [FENCE, *(code_text(line.rstrip()) for line in lines), FENCE]


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
                out.append(code_text(lines[i][strip:]))
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
