"""Catch-up throughput: how fast one agent's mirror works through a long transcript backlog.

Why: after a runner restart (or the first start on an old session) the mirror resumes at the
stored offset and must deliver everything written since, through the same exactly-once path as
live lines. A long Claude session is easily 100 MB; this measures how long that backlog takes.

The transcript (``--mb``, default 100) is built from the real Claude Code 2.1.328 fixture, turn
after turn, every line a real one (ids made unique per turn): the bookkeeping lines Claude
writes around every prompt and request (attachments, prompt snapshots, api-request records,
permission-mode, cost-state, ...; parsed but mirroring nothing), a human prompt, ``--tools``
rounds of assistant text + ``tool_use`` + ``tool_result`` (with a few KB of command output), a
closing assistant text and the turn's ``system`` lines. One real
:class:`bridge.mirror.agent.AgentMirror` (ClaudeRuntime, tailer, SQLite ledger) then catches up from
offset 0 to the end against a no-op recording backend.

Last line: ``mb_per_s= seconds= best_mb_per_s= events= lines=`` (median of ``--runs``
catch-ups, each with a fresh state db; ``best_``: the fastest, least disturbed by other load;
``events`` = posts made).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import cProfile
import io
import pstats
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import (
    ClaudeLines,
    RecordingBackend,
    add_fixtures_arg,
    claude_project_dir,
    dumps,
    emit,
    load_claude,
    median,
    note,
    uniquify,
)

from bridge.mirror.agent import AgentMirror
from bridge.store.db import Store
from bridge.store.ledger import Ledger
from runtimes import LaunchContext, agent_session_id
from runtimes.claude import ClaudeRuntime

SLUG = "catchup"

_COMMANDS = [
    ("git status --short", "\n".join(f" M bridge/module_{i}.py" for i in range(40))),
    (
        ".venv/bin/pytest -q tests/unit",
        "\n".join(f"tests/unit/test_case_{i}.py::test_thing_{i} PASSED" for i in range(50))
        + "\n50 passed in 2.31s",
    ),
    (
        "ls -la bridge",
        "\n".join(
            f"-rw-r--r-- 1 agent agent {1000 + 37 * i:6d} Nov 22 19:{i:02d} file_{i}.py"
            for i in range(45)
        ),
    ),
    ("grep -rn 'def ' bridge/tail.py", "\n".join(f"{i}:def helper_{i}(x):" for i in range(30))),
]

_PROSE = (
    "I looked at `{cmd}`. The output shows what I expected, with one exception: the offset "
    "bookkeeping in **bridge/tail.py** still assumes a single read.\n\n"
    "- the tailer keeps a partial line for the next read\n"
    "- the ledger advances only after a commit\n\n"
    "Next I will adjust the test in `tests/unit/test_tail.py` and re-run it."
)


def tool_round(lines: ClaudeLines, k: int) -> list[str]:
    """Assistant text, tool_use, tool_result: real fixture lines with round-specific content."""
    command, output = _COMMANDS[k % len(_COMMANDS)]
    text = copy.deepcopy(lines.text)
    text["message"]["content"] = [{"type": "text", "text": _PROSE.format(cmd=command)}]
    use = copy.deepcopy(lines.tool_use)
    block = use["message"]["content"][0]
    block["input"] = {"command": command, "description": "Inspect the work tree"}
    result = copy.deepcopy(lines.tool_result)
    result["message"]["content"][0]["content"] = output
    result["toolUseResult"]["stdout"] = output
    return [dumps(text), dumps(use), dumps(result)]


def turn_templates(lines: ClaudeLines, tools: int) -> tuple[list[str], list[list[str]], list[str]]:
    """(before the first request, one tool round each, closing lines) of a working turn."""
    raw = [dumps(obj) for obj in lines.all]
    types = [str(obj.get("type", "")) for obj in lines.all]
    prompt_at = lines.all.index(lines.prompt)
    # Everything Claude writes from the turn's start up to its first API request.
    shape_at = types.index("api-request-shape")
    prelude = raw[:shape_at]
    assert prompt_at < shape_at
    hooks = [i for i, t in enumerate(lines.all) if (t.get("attachment") or {}).get("type")]
    hook = next(raw[i] for i in hooks if lines.all[i]["attachment"]["type"] == "hook_success")
    request = raw[types.index("api-request")]
    rounds = []
    for k in range(tools):
        text, use, result = tool_round(lines, k)
        rounds.append([request, text, use, hook, result, hook])
    snapshots = [raw[i] for i in hooks if lines.all[i]["attachment"]["type"] == "prompt_snapshot"]
    closing = [
        max(snapshots, key=len),  # the prompt snapshot grows with the conversation
        request,
        dumps(lines.text),
        hook,
        dumps(lines.stop_hook),
        dumps(lines.turn_end),
        raw[types.index("last-prompt")],
        raw[types.index("cost-state")],
    ]
    return prelude, rounds, closing


def build_transcript(path: Path, lines: ClaudeLines, target: int, tools: int) -> tuple[int, int]:
    """Write turns until the file holds ``target`` bytes; (bytes, non-empty lines)."""
    prelude, rounds, closing = turn_templates(lines, tools)
    raw = [dumps(obj) for obj in lines.all]
    types = [str(obj.get("type", "")) for obj in lines.all]
    shape_at = types.index("api-request-shape")
    # The request shape and its blobs are written when the request shape changes: now and then.
    shape = [raw[i] for i in range(shape_at, len(raw)) if types[i].startswith("api-request-")]
    session = lines.prompt["sessionId"]
    size = count = 0
    turn = 0
    with path.open("w", encoding="utf-8") as fh:
        while size < target:
            parts: list[str] = []
            parts += [uniquify(x, turn * 64, [session]) for x in prelude]
            if turn % 10 == 0:
                parts += [uniquify(x, turn * 64, [session]) for x in shape]
            for k, rnd in enumerate(rounds):
                parts += [uniquify(x, turn * 64 + 1 + k, [session]) for x in rnd]
            parts += [uniquify(x, turn * 64 + 63, [session]) for x in closing]
            blob = "\n".join(parts) + "\n"
            fh.write(blob)
            size += len(blob.encode())
            count += len(parts)
            turn += 1
    return size, count


async def catch_up(root: Path, config_dir: Path, workdir: Path, session: str) -> tuple[float, int]:
    """One fresh mirror (new state db) reads the whole transcript; (seconds, posts)."""
    store = Store(root / f"state-{time.monotonic_ns()}" / "state.db")
    backend = RecordingBackend(keep=False)
    ctx = LaunchContext(
        slug=SLUG,
        workdir=workdir,
        bin="claude",
        env={"CLAUDE_CONFIG_DIR": str(config_dir)},
        known_session_id=session,
    )
    started = datetime.now(UTC).timestamp()
    mirror = AgentMirror(
        SLUG,
        ClaudeRuntime(),
        lambda: ctx,
        lambda: started,
        lambda: session,
        Ledger(store),
        backend,
        "#catchup",
    )
    t0 = time.perf_counter()
    await mirror.refresh()  # locate, follow from offset 0, drain to the end
    seconds = time.perf_counter() - t0
    assert mirror.current is not None
    store.close()
    return seconds, backend.count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=100.0, help="transcript size (%(default)s)")
    parser.add_argument(
        "--tools", type=int, default=6, help="tool rounds per turn (default: %(default)s)"
    )
    parser.add_argument("--runs", type=int, default=3, help="catch-ups to time (%(default)s)")
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of the first run to stderr"
    )
    add_fixtures_arg(parser)
    args = parser.parse_args()
    lines = load_claude(args.fixtures)
    with tempfile.TemporaryDirectory(prefix="ab-bench-catchup-") as tmp:
        root = Path(tmp)
        workdir = (root / "work").resolve()
        workdir.mkdir()
        config_dir = root / "claude"
        session = agent_session_id(SLUG)
        path = config_dir / "projects" / claude_project_dir(workdir) / f"{session}.jsonl"
        path.parent.mkdir(parents=True)
        t0 = time.perf_counter()
        size, count = build_transcript(path, lines, int(args.mb * 1024 * 1024), args.tools)
        note(f"wrote {size / 2**20:.1f} MB, {count} lines in {time.perf_counter() - t0:.1f}s")
        times: list[float] = []
        events = 0
        for run in range(args.runs):
            profiler = cProfile.Profile() if args.profile and run == 0 else None
            if profiler:
                profiler.enable()
            seconds, events = asyncio.run(catch_up(root, config_dir, workdir, session))
            if profiler:
                profiler.disable()
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
                note(out.getvalue())
            note(f"run {run + 1}: {seconds:.2f}s, {events} posts")
            times.append(seconds)
    seconds = median(times)
    figures: dict[str, Any] = {
        "mb_per_s": size / 2**20 / seconds,
        "seconds": seconds,
        "best_mb_per_s": size / 2**20 / min(times),
        "events": events,
        "lines": count,
    }
    emit(figures)


if __name__ == "__main__":
    main()
