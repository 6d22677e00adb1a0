"""Each runtime tells from two pane captures that a paste is in its composer (runtimes/paste.py).
Screens are shaped like the real CLIs' (Claude Code 2.1.332, Codex 0.171.0; seen in tmux)."""

from __future__ import annotations

from runtimes import get_runtime

CLAUDE_IDLE = "❯ \n" + "─" * 80 + "\n  agentbridge · x · idle\n  ⏵⏵ bypass permissions on"
CODEX_IDLE = "  >_ OpenAI Codex (v0.171.0)\n› Ask Codex to do anything\n  gpt-5 default · /w"


def test_inline_paste_is_seen_even_when_wrapped_and_indented() -> None:
    claude = get_runtime("claude")
    text = "line one\nline two\n" + "a long last line that the composer wraps " * 6
    shown = text.replace("\n", "\n  ")
    wrapped = shown[:150] + "\n  " + shown[150:]  # the pane wrapped the last line
    after = CLAUDE_IDLE.replace("❯ ", "❯ " + wrapped)
    assert claude.paste_shown(CLAUDE_IDLE, after, text)
    assert not claude.paste_shown(CLAUDE_IDLE, CLAUDE_IDLE, text)


def test_placeholders_count_only_when_new() -> None:
    claude, codex = get_runtime("claude"), get_runtime("codex")
    before = CLAUDE_IDLE.replace("❯ ", "❯ [Pasted text #1 +30 lines]")
    after = CLAUDE_IDLE.replace("❯ ", "❯ [Pasted text #1 +30 lines][Pasted text #2 +41 lines]")
    assert claude.paste_shown(before, after, "x\n" * 41)
    assert not claude.paste_shown(before, before, "x\n" * 41)
    after = CODEX_IDLE.replace("Ask Codex to do anything", "[Pasted Content 4125 chars]")
    assert codex.paste_shown(CODEX_IDLE, after, "y" * 4125)
    assert not claude.paste_shown(CODEX_IDLE, after, "y" * 4125)  # not Claude's placeholder


def test_text_already_on_screen_is_not_taken_for_the_paste() -> None:
    """The same prompt sent before is still in the transcript view: only one more copy counts."""
    codex = get_runtime("codex")
    text = "run the tests again\nand report"
    before = "• run the tests again\n  and report\n" + CODEX_IDLE
    assert not codex.paste_shown(before, before, text)
    after = before.replace("Ask Codex to do anything", "run the tests again\n  and report")
    assert codex.paste_shown(before, after, text)


def test_the_composer_line_is_the_last_prompt_line() -> None:
    from runtimes.claude import ClaudeRuntime
    from runtimes.codex import CodexRuntime

    claude = "❯ earlier prompt\n● answer\n" + "─" * 20 + "\n❯\xa0note 5 for x\n" + "─" * 20
    queued = claude.replace("❯\xa0note 5 for x", "❯\xa0Press up to edit queued messages")
    assert ClaudeRuntime().composer(claude) == "❯\xa0note 5 for x"
    assert ClaudeRuntime().composer(queued) != ClaudeRuntime().composer(claude)
    assert CodexRuntime().composer("› hello\n\n  ? for shortcuts") == "› hello"
    assert CodexRuntime().composer("no input box here") is None
