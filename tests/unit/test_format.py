"""Table tests for bridge.render.event, plus seeded randomised property tests for split_message.

``hypothesis`` is not a dev dependency, so the property tests draw their inputs from
``random.Random(seed)``: deterministic, reproducible from the seed in the test id.
"""

from __future__ import annotations

import functools
import random
import re
from typing import Any

import pytest

from bridge.render.event import Rendered, render_event
from bridge.render.markdown import escape_mrkdwn, gfm_to_mrkdwn
from bridge.render.split import split_message
from bridge.render.tools import shorten_output, tool_one_liner
from runtimes.events import Event, EventKind
from tests.unit.cputime import SCALE, assert_linear

FENCE = "```"
GH_TOKEN = "gh" + "p_" + "aB3dE5fG7hJ9kL1mN2pQ4rS6tU8vW0xYzaB"  # fake, assembled at runtime


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a & b < c > d", "a &amp; b &lt; c &gt; d"),
        ("&amp;", "&amp;amp;"),
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_escape_mrkdwn(text: str, expected: str) -> None:
    assert escape_mrkdwn(text) == expected


@pytest.mark.parametrize(
    ("md", "expected"),
    [
        # emphasis
        ("**bold** and __bold__", "*bold* and *bold*"),
        ("*it* and _it_", "_it_ and _it_"),
        ("~~gone~~", "~gone~"),
        ("***both***", "*_both_*"),
        ("**bold _and it_**", "*bold _and it_*"),
        # things that must not become emphasis
        ("snake_case_name and __init__.py", "snake_case_name and __init__.py"),
        ("2*3*4 and a * b * c", "2*3*4 and a * b * c"),
        ("pass *args and **kwargs", "pass *args and **kwargs"),
        ("** not bold **", "** not bold **"),
        # links and URLs
        ("[docs](https://example.com/a?b=1&c=2)", "<https://example.com/a?b=1&c=2|docs>"),
        ("[**bold** label](https://x.io)", "<https://x.io|*bold* label>"),
        ("[a < b](https://x.io)", "<https://x.io|a &lt; b>"),
        ("[https://x.io](https://x.io)", "<https://x.io>"),
        ('[t](https://x.io "title")', "<https://x.io|t>"),
        (
            "[wiki](https://en.wikipedia.org/wiki/Foo_(bar))",
            "<https://en.wikipedia.org/wiki/Foo_(bar)|wiki>",
        ),
        ("![diagram](https://x.io/d.png)", "<https://x.io/d.png|diagram>"),
        ("[main.py](src/main.py)", "main.py (src/main.py)"),
        ("[src/a.py](src/a.py)", "src/a.py"),
        ("<https://auto.link/x>", "<https://auto.link/x>"),
        ("see https://x.io/a_b_c?d=1&e=2.", "see https://x.io/a_b_c?d=1&amp;e=2."),
        ("**https://x.io/a**", "*https://x.io/a*"),
        # headings
        ("# Title", "*Title*"),
        ("### Sub **bold** title ###", "*Sub bold title*"),
        ("## C#", "*C#*"),
        ("#hashtag", "#hashtag"),
        ("#", ""),
        # lists
        ("- one\n- two", "• one\n• two"),
        ("* star\n+ plus", "• star\n• plus"),
        ("- a\n  - nested *x*\n    - deeper", "• a\n  • nested _x_\n    • deeper"),
        ("- [ ] todo\n- [x] done", "• ☐ todo\n• ☑ done"),
        ("1. first\n2) second\n10. tenth", "1. first\n2. second\n10. tenth"),
        # quotes and rules
        ("> quoted **b**", "> quoted *b*"),
        (">> nested", "> nested"),
        (">", ">"),
        ("> - item", "> • item"),
        ("---\n***\n_ _ _", "──────────\n──────────\n──────────"),
        # inline code: escaped, otherwise untouched
        ("`a < b && *c*`", "`a &lt; b &amp;&amp; *c*`"),
        ("``a `b` c``", "`a `b` c`"),
        ("`unclosed *x*", "`unclosed _x_"),
        ("**`code` in bold**", "*`code` in bold*"),
        ("[`fn`](https://x.io)", "<https://x.io|`fn`>"),
        # escapes
        (r"\*not it\*", "*not it*"),
        ("<div> & </div>", "&lt;div&gt; &amp; &lt;/div&gt;"),
        ("a\r\nb", "a\nb"),
        ("private \ue000 use", "private \ufffd use"),
    ],
)
def test_gfm_inline_and_blocks(md: str, expected: str) -> None:
    assert gfm_to_mrkdwn(md) == expected


@pytest.mark.parametrize(
    ("md", "expected"),
    [
        (
            '```python\nif a < b and c > d:\n    print("&", **kw)\n```',
            '```\nif a &lt; b and c &gt; d:\n    print("&amp;", **kw)\n```',
        ),
        ("~~~\n# not a heading\n- not a list\n~~~", "```\n# not a heading\n- not a list\n```"),
        ("```\nunclosed\n- x", "```\nunclosed\n- x\n```"),
        ("````\n```\ninner\n```\n````", "```\n``\u200b`\ninner\n``\u200b`\n```"),
        ("- item\n   ```\n   code\n   ```", "• item\n```\ncode\n```"),
        ("``` inline ``` text", "` inline ` text"),
        (
            "before\n\n| Col | B |\n|-----|:-:|\n| 1 | two |\n| long cell | 3 |\n\nafter",
            "before\n\n```\n| Col       | B   |\n|-----------|-----|\n| 1         | two |\n"
            "| long cell | 3   |\n```\n\nafter",
        ),
        (
            "a | b\n--- | ---\nx | y & z",
            "```\n| a | b     |\n|---|-------|\n| x | y &amp; z |\n```",
        ),
        ("| a |\n|---|\n| 1 | extra |\n| |", "```\n| a |\n|---|\n| 1 |\n|   |\n```"),
        ("not | a table\n---", "not | a table\n──────────"),
    ],
)
def test_gfm_code_and_tables(md: str, expected: str) -> None:
    assert gfm_to_mrkdwn(md) == expected


MD_TOKENS = [
    *("word", " ", "\n", "\n\n", "**", "*", "_", "__", "~~", "`", "```", "```py\n", "\n```\n"),
    *("[", "]", "(", ")", "<", ">", "&", "# ", "- ", "1. ", "> ", "|", "\n|---|---|\n", "\\"),
    *(
        "https://x.io/a_b?c=1&d=2",
        "[l](https://y.io)",
        "![i](https://z.io/p.png)",
        "<https://a.io>",
    ),
]
LINK_OR_ENTITY = re.compile(r"<(?:https?|mailto|ftp):[^<>|]*(?:\|[^<>]*)?>|&(?:amp|lt|gt);")


@pytest.mark.parametrize("seed", range(300))
def test_gfm_output_is_escaped_and_fences_balance(seed: int) -> None:
    rng = random.Random(seed)
    md = "".join(rng.choice(MD_TOKENS) for _ in range(rng.randint(0, 120)))
    out = gfm_to_mrkdwn(md)
    bare = re.sub(r"(?m)^>", "", LINK_OR_ENTITY.sub("", out))  # quote markers stay literal
    assert not re.search(r"[<>&]", bare)
    assert out.count(FENCE) % 2 == 0
    chunks = split_message(out, rng.choice([16, 40, 200]))
    assert all(chunk.count(FENCE) % 2 == 0 for chunk in chunks)
    assert reconstructs(chunks, out)


@pytest.mark.parametrize(
    ("unit", "count"),
    [("_a ", 4000), ("**a", 4000), ("``a`", 3000), ("[a](", 3000), ("*_~`[", 2400), ("`", 12000)],
)
def test_gfm_pathological_lines_are_linear(unit: str, count: int) -> None:
    assert_linear(gfm_to_mrkdwn, lambda n: unit * n, count, what=repr(unit))


def test_gfm_long_heading_is_linear() -> None:
    assert_linear(gfm_to_mrkdwn, lambda n: "# " + " " * n + "x", 12000)


@pytest.mark.parametrize(
    ("tool", "tool_input", "meta", "expected"),
    [
        ("Bash", {"command": "ls -la"}, {}, "$ ls -la"),
        ("Bash", {"command": "cat <<EOF\nhello\nEOF"}, {}, "$ cat <<EOF …"),
        ("Bash", {"command": "x" * 300}, {}, "$ " + "x" * 199 + "…"),
        ("exec_command", {"cmd": "git status"}, {}, "$ git status"),
        ("shell", {"command": ["bash", "-lc", "npm test"]}, {}, "$ npm test"),
        ("shell", {"command": ["rg", "-n", "foo bar"]}, {}, "$ rg -n 'foo bar'"),
        ("shell", {"command": ["/bin/zsh", "-c", "make"]}, {}, "$ make"),
        ("Edit", {"file_path": "/src/a.py", "old_string": "x"}, {}, "Edit /src/a.py"),
        ("Write", {"file_path": "b.md", "content": "..."}, {}, "Write b.md"),
        ("Read", {"file_path": "c.txt", "offset": 5}, {}, "Read c.txt"),
        ("MultiEdit", {"file_path": "d.py", "edits": []}, {}, "MultiEdit d.py"),
        ("NotebookEdit", {"notebook_path": "n.ipynb"}, {}, "NotebookEdit n.ipynb"),
        ("Grep", {"pattern": "TODO"}, {}, "Grep TODO"),
        ("Grep", {"pattern": "def main", "path": "src"}, {}, "Grep def main in src"),
        ("Glob", {"pattern": "**/*.py"}, {}, "Glob **/*.py"),
        ("WebFetch", {"url": "https://x.io", "prompt": "p"}, {}, "WebFetch https://x.io"),
        ("WebSearch", {"query": "slack mrkdwn"}, {}, "WebSearch slack mrkdwn"),
        ("Task", {"description": "Find bugs", "prompt": "long"}, {}, "Task Find bugs"),
        ("apply_patch", {"input": "..."}, {"files": ["a", "b"]}, "apply_patch 2 files"),
        ("apply_patch", {}, {"files": 1}, "apply_patch 1 file"),
        (
            "apply_patch",
            {"input": "*** Begin Patch\n*** Update File: a\n*** Add File: b\n*** End Patch"},
            {},
            "apply_patch 2 files",
        ),
        ("TodoWrite", {"todos": [{"content": "a"}, {"content": "b"}, {}]}, {}, "TodoWrite 3 items"),
        ("TodoWrite", {"todos": [{}]}, {}, "TodoWrite 1 item"),
        ("TodoWrite", {"todos": "garbage"}, {}, "TodoWrite 0 items"),
        ("apply_patch", {}, {"files": object()}, "apply_patch 0 files"),
        ("update_plan", {"plan": [{}, {}]}, {}, "update_plan 2 steps"),
        ("mcp__gh__search", {"q": "bug", "n": 5}, {}, "mcp__gh__search(q=bug, n=5)"),
        ("Other", {"text": "a" * 60}, {}, "Other(text=" + "a" * 39 + "…)"),
        ("Other", None, {}, "Other()"),
        (None, None, {}, "tool()"),
        ("Edit", {}, {}, "Edit"),
    ],
)
def test_tool_one_liner(
    tool: str | None, tool_input: dict[str, Any] | None, meta: dict[str, Any], expected: str
) -> None:
    assert tool_one_liner(tool, tool_input, meta) == expected


def numbered(n: int) -> str:
    return "\n".join(f"line {i}" for i in range(n))


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        ("short", {}, "short"),
        ("a\nb\n\n", {}, "a\nb"),
        (numbered(15), {}, numbered(15)),
        (
            numbered(100),
            {},
            "\n".join([*(f"line {i}" for i in range(10)), "… 85 lines omitted …"])
            + "\n"
            + "\n".join(f"line {i}" for i in range(95, 100)),
        ),
        (numbered(5), {"max_lines": 3}, "line 0\nline 1\n… 2 lines omitted …\nline 4"),
        (numbered(4), {"max_lines": 3}, "line 0\nline 1\n… 1 line omitted …\nline 3"),
        ("x" * 20, {"max_chars": 10}, "x" * 5 + "…"),
        (
            "\n".join(c * 8 for c in "abcdef"),
            {"max_chars": 30},
            "aaaaaaaa\nbbbbbbbb\n… 3 lines omitted …\nffffffff",
        ),
        ("head\n" + "y" * 50, {"max_chars": 30}, "head\n…" + "y" * 24),
        (numbered(3), {"max_lines": 1}, "line 0\n… 2 lines omitted …"),
    ],
)
def test_shorten_output(text: str, kwargs: dict[str, int], expected: str) -> None:
    assert shorten_output(text, **kwargs) == expected


@pytest.mark.parametrize("n", [16, 50, 1000, 100_000])
def test_shorten_output_bounds(n: int) -> None:
    text = "\n".join(f"{i} " + "z" * (i % 300) for i in range(n))
    out = shorten_output(text)
    assert len(out.split("\n")) <= 16
    assert len(out) <= 1500 + 40


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("", 100, []),
        ("short", 100, ["short"]),
        ("para one\n\npara two", 16, ["para one\n\n", "para two"]),
        ("line one\nline two", 16, ["line one\n", "line two"]),
        ("word1 word2 word3 word4", 16, ["word1 word2 ", "word3 word4"]),
        ("x" * 40, 16, ["x" * 16, "x" * 16, "x" * 8]),
        ("ab <https://x.io|lbl> cd", 20, ["ab ", "<https://x.io|lbl> ", "cd"]),
        ("abcdefghijklm&amp;xyz", 16, ["abcdefghijklm", "&amp;xyz"]),
        ("<https://x.io/a|b c> d", 20, ["<https://x.io/a|b c>", " d"]),
        (
            "intro\n```\nline 1\nline 2\nline 3\n```\nend",
            20,
            ["intro\n```\nline 1\n```", "```\nline 2\n```", "```\nline 3\n```\nend"],
        ),
        (
            "ab\n```\nabcdefghijklmnopqrstuv\n```",
            16,
            ["ab\n", "```\nabcdefgh\n```", "```\nijklmnop\n```", "```\nqrstuv\n```"],
        ),
    ],
)
def test_split_message_table(text: str, limit: int, expected: list[str]) -> None:
    assert split_message(text, limit) == expected


def test_split_message_rejects_tiny_limit() -> None:
    with pytest.raises(ValueError):
        split_message("abc", 8)


TOKENS = [
    "word",
    "longerword",
    " ",
    " ",
    "\n",
    "\n\n",
    "```",
    "\n```\n",
    "`",
    "<https://example.com/path|a label>",
    "<https://x.io>",
    "&amp;",
    "&lt;",
    "&gt;",
    "*bold*",
    "x" * 30,
    "é",
]


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(TOKENS) for _ in range(rng.randint(0, 300)))


def reconstructs(chunks: list[str], text: str) -> bool:
    """Whether removing split_message's additions (a ``"```\\n"`` reopening prefix, a
    ``"```"``/``"\\n```"`` closing suffix) from each chunk gives back ``text`` exactly."""

    @functools.cache
    def from_chunk(i: int, pos: int) -> bool:
        if i == len(chunks):
            return pos == len(text)
        chunk = chunks[i]
        for head in {chunk, chunk.removeprefix(FENCE + "\n")}:
            for body in {head, head.removesuffix(FENCE), head.removesuffix("\n" + FENCE)}:
                if text.startswith(body, pos) and from_chunk(i + 1, pos + len(body)):
                    return True
        return False

    return from_chunk(0, 0)


@pytest.mark.parametrize("seed", range(300))
def test_split_message_properties(seed: int) -> None:
    rng = random.Random(seed)
    text = random_text(rng)
    if text.count(FENCE) % 2:
        text += "\n```"  # split_message is fed balanced mrkdwn (gfm_to_mrkdwn closes fences)
    limit = rng.choice([16, 24, 40, 64, 100, 500])
    chunks = split_message(text, limit)
    assert all(0 < len(chunk) <= limit for chunk in chunks)
    assert all(chunk.count(FENCE) % 2 == 0 for chunk in chunks)
    assert reconstructs(chunks, text)
    if FENCE not in text:
        assert "".join(chunks) == text
    for chunk in chunks:  # no half links or half entities at a boundary, when they fit at all
        inner = chunk.removeprefix(FENCE + "\n").removesuffix(FENCE).removesuffix("\n")
        if limit >= 48:
            assert not re.search(r"<[^<>]*$", inner)
            assert not re.search(r"^[^<>]*>", inner)
        assert not re.search(r"&[a-z]{0,3}$", inner)
        assert not re.match(r"^[a-z]{1,3};", inner)


def test_split_message_fenced_output_example() -> None:
    body = "\n".join(f"out {i:03}" for i in range(1000))
    text = f"result:\n```\n{body}\n```\ndone"
    chunks = split_message(text, 3500)
    assert len(chunks) > 1
    assert chunks[0].startswith("result:\n```\n")
    assert all(c.endswith("```") for c in chunks[:-1])
    assert all(c.startswith("```\n") for c in chunks[1:])
    assert reconstructs(chunks, text)


@pytest.mark.parametrize(
    ("unit", "count"), [("word " * 20 + "\n", 10_000), ("x", 1_000_000), ("<", 1_000_000)]
)
def test_split_message_is_linear(unit: str, count: int) -> None:
    assert_linear(split_message, lambda n: unit * n, count // SCALE, what=repr(unit[:8]))


def ev(kind: EventKind, text: str = "", **kw: Any) -> Event:
    return Event(kind=kind, id="e1", text=text, **kw)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            ev(EventKind.USER_PROMPT, "fix **the** bug"),
            Rendered(":bust_in_silhouette: fix *the* bug"),
        ),
        (ev(EventKind.USER_PROMPT, "a\n- b"), Rendered(":bust_in_silhouette:\na\n• b")),
        (ev(EventKind.USER_PROMPT, "   \n"), None),
        (
            ev(EventKind.ASSISTANT_TEXT, "Done. See [PR](https://x.io/1)."),
            Rendered("Done. See <https://x.io/1|PR>."),
        ),
        (ev(EventKind.ASSISTANT_TEXT, "a < b"), Rendered("a &lt; b")),
        (ev(EventKind.THINKING, "hmm"), None),
        (ev(EventKind.TOOL_CALL, tool="Bash", tool_input={"command": "ls"}), Rendered("`$ ls`")),
        (
            ev(EventKind.TOOL_CALL, tool="Bash", tool_input={"command": "echo `date` > a && b"}),
            Rendered("`$ echo ˋdateˋ &gt; a &amp;&amp; b`"),
        ),
        (ev(EventKind.TOOL_RESULT, "ok\n"), Rendered("```\nok\n```")),
        (ev(EventKind.TOOL_RESULT, "boom", is_error=True), Rendered(":x: Error\n```\nboom\n```")),
        (ev(EventKind.TOOL_RESULT, "", is_error=True), Rendered(":x: Error")),
        (ev(EventKind.TOOL_RESULT, ""), None),
        (
            ev(EventKind.TOOL_RESULT, "\x1b[31mred\x1b[0m\r\n10%\r100%"),
            Rendered("```\nred\n100%\n```"),
        ),
        (ev(EventKind.TOOL_RESULT, "a ``` b <c>"), Rendered("```\na ``\u200b` b &lt;c&gt;\n```")),
        (ev(EventKind.COMPACTION, "long summary"), Rendered(":compression: _Context compacted_")),
        (ev(EventKind.CONTEXT_SIZE, tokens=5), None),
        (ev(EventKind.TURN_START), None),
        (ev(EventKind.TURN_END), None),
    ],
)
def test_render_event(event: Event, expected: Rendered | None) -> None:
    assert render_event(event) == expected


def test_render_thinking_when_shown() -> None:
    event = ev(EventKind.THINKING, "consider a < b\n\nthen ```c```")
    assert render_event(event, show_thinking=True) == Rendered(
        ":thought_balloon: _thinking_\n> consider a &lt; b\n>\n> then ``\u200b`c``\u200b`"
    )


@pytest.mark.parametrize(
    ("kind", "filename"),
    [
        (EventKind.ASSISTANT_TEXT, "reply.md"),
        (EventKind.USER_PROMPT, "prompt.md"),
        (EventKind.TOOL_RESULT, "output.txt"),
        (EventKind.THINKING, "thinking.md"),
    ],
)
def test_render_large_content_as_file(kind: EventKind, filename: str) -> None:
    text = "# Heading\n" + "a < b\n" * 30 + f"token {GH_TOKEN}\n"
    rendered = render_event(ev(kind, text), show_thinking=True, file_threshold=100)
    assert rendered is not None
    assert rendered.as_file
    assert rendered.filename == filename
    assert rendered.text.startswith("# Heading\na < b")  # raw file content, not mrkdwn
    assert GH_TOKEN not in rendered.text
    assert "[REDACTED:github-token]" in rendered.text


def test_render_long_tool_output_is_shortened_inline() -> None:
    rendered = render_event(ev(EventKind.TOOL_RESULT, "\n".join(map(str, range(500)))))
    assert rendered is not None and not rendered.as_file
    assert "… 485 lines omitted …" in rendered.text


SECRET_EVENTS = [
    ev(EventKind.USER_PROMPT, f"use {GH_TOKEN} please"),
    ev(EventKind.ASSISTANT_TEXT, f"Set `GITHUB_TOKEN={GH_TOKEN}` and **go**"),
    ev(EventKind.THINKING, f"the token is {GH_TOKEN}"),
    ev(EventKind.TOOL_RESULT, f"GITHUB_TOKEN={GH_TOKEN}\n" * 3),
    ev(
        EventKind.TOOL_CALL,
        tool="Bash",
        tool_input={"command": f"gh auth login --with-token {GH_TOKEN}"},
    ),
    # the token straddles the 200-character clip: it must be redacted before clipping
    ev(
        EventKind.TOOL_CALL,
        tool="Bash",
        tool_input={"command": "echo " + "x" * 180 + " " + GH_TOKEN},
    ),
    ev(
        EventKind.TOOL_CALL,
        tool="shell",
        tool_input={"command": ["bash", "-lc", f"curl -u {GH_TOKEN}"]},
    ),
    ev(EventKind.TOOL_CALL, tool="mcp__x", tool_input={"auth": {"token": GH_TOKEN}}),
]


@pytest.mark.parametrize("event", SECRET_EVENTS, ids=lambda e: f"{e.kind}-{e.tool}")
def test_render_always_redacts(event: Event) -> None:
    rendered = render_event(event, show_thinking=True)
    assert rendered is not None
    assert GH_TOKEN not in rendered.text
    assert GH_TOKEN[:12] not in rendered.text
