"""Enter follows a paste as soon as the paste is on screen, and no prompt is ever split or merged.

Multi-line prompts (short ones drawn inline, long ones drawn as the CLI's paste placeholder) are
queued back to back; the runner pastes each the moment the previous turn ends and presses
Enter once the pane shows it (runtimes/paste.py). The fake model's request log must then hold
every prompt exactly once, whole, in order: an Enter that came too early would have split a
prompt (or glued the next one to it) and shown up here.

The pinned CLIs always run. Other versions run when ``AGENTBRIDGE_EXTRA_CLIS`` names them, e.g.
``claude=/tmp/cli-old/node_modules/.bin/claude codex=/tmp/cli-old/node_modules/.bin/codex``
(docs/benchmarks.md lists the versions this was checked on).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bridge.config import paths
from bridge.store.db import Store
from bridge.store.queue import Kind, PromptQueue
from tests.conftest import Fleet, wait_until
from tests.integration.test_runner import wait_ready


def _extra() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for spec in os.environ.get("AGENTBRIDGE_EXTRA_CLIS", "").split():
        runtime, _, binary = spec.partition("=")
        out[runtime] = Path(binary)
    return out


CASES = [
    pytest.param("claude", "claude", id="claude-pinned"),
    pytest.param("codex", "codex", id="codex-pinned"),
    pytest.param("codex", "codex136", id="codex-0.136"),
    # Other versions only when named: collected then, absent (not skipped) otherwise.
    *(pytest.param(runtime, f"extra:{runtime}", id=f"{runtime}-extra") for runtime in _extra()),
]


_WRAPPED = re.compile(
    r'\s*<pasted_content id="[^"]*">\n(.*)\n</pasted_content id="[^"]*">\s*', re.S
)


def unwrap(prompt: str) -> str:
    """Claude 2.1.332 sends some pastes wrapped as ``<pasted_content id=..>``: the text inside."""
    found = _WRAPPED.fullmatch(prompt)
    return found.group(1) if found else prompt


def prompts(tag: str) -> list[str]:
    long_lines = "\n".join(
        f"{tag} row {n}: " + "lorem ipsum dolor sit amet " * 3 for n in range(40)
    )
    return [
        f"{tag} first\nsecond line of the first",
        f"{tag} two\n\nwith a blank line\nand a third",
        f"{tag} single line",
        f"{tag} long paste\n{long_lines}\n{tag} long paste ends here",
        f"{tag} after the long one\nstill whole",
        "\n".join(f"{tag} five-{n}" for n in range(5)),
    ]


@pytest.mark.parametrize(("runtime", "bin_name"), CASES)
def test_back_to_back_multiline_prompts_arrive_once_whole(
    fleet: Fleet, runtime: str, bin_name: str
) -> None:
    if bin_name.startswith("extra:"):
        bin_name = f"extra-{runtime}"
        fleet.bins[bin_name] = _extra()[runtime]
    slug = f"paste-{runtime}"
    fleet.agent(slug, runtime, version=bin_name)
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, slug, runtime)
    model = fleet.anthropic if runtime == "claude" else fleet.openai
    wanted = prompts(slug)
    store = Store(paths.db_path(fleet.state_dir))
    try:
        queue = PromptQueue(store)
        for text in wanted:
            # Delivered at turn boundaries, each the moment the previous turn ends (a steer
            # would be pasted mid-turn, where the CLI itself folds it into the running turn).
            queue.enqueue(slug, Kind.SCHEDULED, text, source={"via": "cli"})
    finally:
        store.close()
    wait_until(
        lambda: sum(slug in p for p in model.prompts()) >= len(wanted),
        240,
        "every prompt at the model",
    )
    # Every turn's answer has come back and nothing more is on its way.
    wait_until(lambda: "working -> idle" in fleet.log_text(), 60, "the last turn to end")
    got = [unwrap(p) for p in model.prompts() if slug in p]
    assert got == wanted, "\n".join(
        f"{g[:60]!r} | {w[:60]!r}" for g, w in zip(got, wanted, strict=False)
    )
