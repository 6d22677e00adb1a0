"""Helpers shared by the benchmarks: real fixture lines, throwaway fleets, a recording backend.

The benchmarks drive the real product code (``Mirrors``, ``AgentMirror``, the tailer, the SQLite
ledger, ``scan_rollouts``); only the chat backend is replaced, by one that timestamps posts, so
the figures measure agentbridge and not Slack. Everything lives under a temp dir: no benchmark
reads or writes ``~/.claude``, ``~/.codex``, ``~/.agentbridge`` or talks to tmux or the network.

Transcript content is built from the real Claude Code / Codex fixtures (``tests/fixtures``, or
``--fixtures`` / ``AGENTBRIDGE_FIXTURES``) so line sizes and shapes are what the CLIs write.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bridge.chat.protocol import Incoming, Outgoing, Posted
from bridge.config.model import Config, parse_config
from bridge.store.db import Store
from runtimes import agent_session_id

REPO = Path(__file__).resolve().parent.parent


def _default_fixtures() -> Path:
    """``AGENTBRIDGE_FIXTURES``, else the copies shipped with the tests, else the shared dir."""
    if os.environ.get("AGENTBRIDGE_FIXTURES"):
        return Path(os.environ["AGENTBRIDGE_FIXTURES"])
    shipped = REPO / "tests" / "fixtures"
    return shipped if shipped.is_dir() else REPO.parent / "shared" / "fixtures"


DEFAULT_FIXTURES = _default_fixtures()
CLAUDE_FIXTURE = Path("claude-2.1.328") / "0f4d7a0e-3a55-4c3e-9d8e-1a2b3c4d5e6f.jsonl"
CODEX_FIXTURE_DIR = Path("codex-0.169.0")

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MSG_ID = re.compile(r"\b(msg_[0-9a-f]{24}|toolu_[0-9a-f]{12})([0-9a-f]{8})\b")


def add_fixtures_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fixtures",
        type=Path,
        default=DEFAULT_FIXTURES,
        help="directory holding the real transcript fixtures (default: %(default)s)",
    )


def emit(figures: dict[str, Any]) -> None:
    """Print the machine-readable result: the LAST line of every benchmark's output."""
    print(" ".join(f"{key}={_fmt(value)}" for key, value in figures.items()), flush=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def note(message: str) -> None:
    """Progress for humans, on stderr, so stdout stays clean for the figures line."""
    print(message, file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); exact for the small samples benches collect."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- fixture lines ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaudeLines:
    """The real Claude Code 2.1.328 fixture, line by line, with the interesting ones named."""

    all: list[dict[str, Any]]
    prompt: dict[str, Any]
    """A typed human prompt (string content)."""
    text: dict[str, Any]
    """An assistant line with one text block."""
    tool_use: dict[str, Any]
    tool_result: dict[str, Any]
    turn_end: dict[str, Any]
    """``system`` / ``turn_duration``."""
    stop_hook: dict[str, Any]
    """``system`` / ``stop_hook_summary`` (parsed, yields nothing)."""

    def by_index(self, index: int) -> dict[str, Any]:
        return self.all[index]


def load_claude(fixtures: Path) -> ClaudeLines:
    path = fixtures / CLAUDE_FIXTURE
    if not path.exists():
        raise SystemExit(f"fixture missing: {path} (pass --fixtures DIR)")
    lines = [json.loads(raw) for raw in path.read_text(encoding="utf-8").splitlines() if raw]

    def first(pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        return next(line for line in lines if pred(line))

    def blocks(line: dict[str, Any]) -> list[Any]:
        content = (line.get("message") or {}).get("content")
        return content if isinstance(content, list) else []

    def is_prompt(line: dict[str, Any]) -> bool:
        return (
            line.get("type") == "user"
            and isinstance(line["message"].get("content"), str)
            and not line.get("isMeta")
            and not line.get("isCompactSummary")
        )

    return ClaudeLines(
        all=lines,
        prompt=first(is_prompt),
        text=first(
            lambda x: x.get("type") == "assistant" and [b["type"] for b in blocks(x)] == ["text"]
        ),
        tool_use=first(
            lambda x: (
                x.get("type") == "assistant" and [b["type"] for b in blocks(x)] == ["tool_use"]
            )
        ),
        tool_result=first(
            lambda x: x.get("type") == "user" and any(b["type"] == "tool_result" for b in blocks(x))
        ),
        turn_end=first(lambda x: x.get("subtype") == "turn_duration"),
        stop_hook=first(lambda x: x.get("subtype") == "stop_hook_summary"),
    )


def uniquify(line: str, instance: int, keep: Iterable[str] = ()) -> str:
    """Give every id in a serialized line (uuids, ``msg_``, ``toolu_``) the instance's tail.

    The last 8 hex digits of each id become ``instance``, so lines rewritten with the same
    instance still refer to each other (a tool_use and its tool_result) while every repetition
    of a fixture line gets ids of its own, as a real transcript would. Ids in ``keep`` (the
    session id) are left alone.
    """
    tail = f"{instance & 0xFFFFFFFF:08x}"
    kept = set(keep)

    def sub_uuid(m: re.Match[str]) -> str:
        return m.group(0) if m.group(0) in kept else m.group(0)[:-8] + tail

    line = _UUID.sub(sub_uuid, line)
    return _MSG_ID.sub(lambda m: m.group(1) + tail, line)


def dumps(obj: dict[str, Any]) -> str:
    """Serialized as Claude Code writes it: compact JSON, non-ASCII kept."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def assistant_text_line(template: dict[str, Any], message_id: str, uuid: str, text: str) -> str:
    """A real-shaped assistant text line (one content block) with our own ids and text."""
    obj = json.loads(json.dumps(template))
    obj["message"]["id"] = message_id
    obj["message"]["content"] = [{"type": "text", "text": text}]
    obj["uuid"] = uuid
    return dumps(obj)


def claude_project_dir(workdir: Path) -> str:
    """Claude Code's munged cwd: every character but ``[A-Za-z0-9]`` becomes ``-``."""
    return re.sub(r"[^A-Za-z0-9]", "-", str(workdir))


# -- a throwaway fleet --------------------------------------------------------------------


@dataclass
class BenchAgent:
    slug: str
    workdir: Path
    config_dir: Path
    session_id: str
    transcript: Path


@dataclass
class Fleet:
    root: Path
    agents: list[BenchAgent]
    config: Config
    store: Store
    environ: dict[str, str] = field(default_factory=dict)


def isolated_environ(root: Path) -> dict[str, str]:
    """The runner's environment for the bench: the real one, minus anything that could point
    a runtime at the user's own CLI homes."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "AGENTBRIDGE_HOME", "TMUX", "TMUX_PANE")
    }
    env["HOME"] = str(root / "home")
    env["AGENTBRIDGE_HOME"] = str(root / "state")
    (root / "home").mkdir(parents=True, exist_ok=True)
    return env


def build_claude_fleet(
    root: Path, count: int, seed_content: bytes, *, shared_home: bool = False
) -> Fleet:
    """``count`` Claude agents, each with an existing transcript (holding ``seed_content``),
    registered in a fresh Store as a launched agent would be.

    Each agent gets its own CLAUDE_CONFIG_DIR, or with ``shared_home`` they all share one (as
    agents do that leave it unset and use ``~/.claude``): one watched root for the fleet.
    """
    root.mkdir(parents=True, exist_ok=True)
    specs: list[dict[str, Any]] = []
    for i in range(count):
        slug = f"bench-{i:03d}"
        home = "shared" if shared_home else slug
        workdir = root / "work" / slug
        workdir.mkdir(parents=True, exist_ok=True)
        specs.append(
            {
                "slug": slug,
                "runtime": "claude",
                "workdir": str(workdir.resolve()),
                "env": {"CLAUDE_CONFIG_DIR": str((root / "claude" / home).resolve())},
            }
        )
    (root / "agents.yaml").write_text(yaml.safe_dump({"agents": specs}, sort_keys=False))
    fleet = open_claude_fleet(root)
    for agent in fleet.agents:
        agent.transcript.parent.mkdir(parents=True, exist_ok=True)
        agent.transcript.write_bytes(seed_content)
        # What the reconciler records when it launches Claude with --session-id <id>.
        fleet.store.upsert_agent(agent.slug, "claude", agent_session_id(agent.slug), "bench")
        fleet.store.set_runtime_session(agent.slug, agent.session_id)
        fleet.store.record_launch(agent.slug, None, agent.session_id, False, "bench")
    return fleet


def open_claude_fleet(root: Path) -> Fleet:
    """The fleet :func:`build_claude_fleet` made under ``root`` (e.g. from another process)."""
    environ = isolated_environ(root)
    config_path = root / "agents.yaml"
    config = parse_config(config_path.read_text(encoding="utf-8"), config_path, environ)
    agents: list[BenchAgent] = []
    for spec in config.agents:
        config_dir = Path(spec.env["CLAUDE_CONFIG_DIR"])
        session_id = agent_session_id(spec.slug)  # what Claude is launched with
        project = config_dir / "projects" / claude_project_dir(spec.workdir)
        agents.append(
            BenchAgent(
                spec.slug, spec.workdir, config_dir, session_id, project / f"{session_id}.jsonl"
            )
        )
    store = Store(root / "state" / "state.db")
    return Fleet(root, agents, config, store, environ)


# -- the chat side ------------------------------------------------------------------------


class RecordingBackend:
    """A ChatBackend that posts nowhere and timestamps every ``post`` call on entry.

    ``time.monotonic`` is CLOCK_MONOTONIC, shared by every process on the machine, so a post
    time here can be compared with an append time taken in the writer process.
    """

    name = "bench"
    coalesce = False
    """One post per event (as the console backend does), so every post can be timed."""
    live_status = False

    def __init__(self, *, keep: bool = True) -> None:
        self.keep = keep
        self.count = 0
        self.posts: list[tuple[float, str, str, str]] = []
        """(monotonic time, slug, event id, text) of every post, when ``keep``."""
        self._inbox: asyncio.Queue[Incoming] = asyncio.Queue()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def post(self, msg: Outgoing) -> Posted:
        now = time.monotonic()
        self.count += 1
        if self.keep:
            self.posts.append((now, msg.slug, msg.event_id, msg.text))
        return Posted(str(self.count))

    async def update(self, channel: str, ref: str, text: str) -> None:
        return None

    async def react(self, channel: str, ref: str, emoji: str) -> None:
        return None

    async def notify_user(self, channel: str, user: str, text: str) -> None:
        return None

    async def find_posted(
        self, channel: str, event_ids: Sequence[str], thread: str | None = None
    ) -> dict[str, str]:
        return {}

    async def receive(self) -> AsyncIterator[Incoming]:
        while True:
            yield await self._inbox.get()


def caught_up(fleet: Fleet, mirrors: Any) -> bool:
    """Whether every agent's mirror follows its transcript and has read it to the end."""
    for agent in fleet.agents:
        mirror = mirrors.mirrors.get(agent.slug)
        current = mirror.current if mirror is not None else None
        if current is None or current.path != str(agent.transcript):
            return False
        if current.position.offset != agent.transcript.stat().st_size:
            return False
    return True


async def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``predicate`` every 50 ms; seconds it took, or SystemExit after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def seed_history(store: Store, slugs: Sequence[str], rows: int, chunk: int = 50_000) -> None:
    """``rows`` posted ledger rows spread over ``slugs``, as months of mirroring leave them
    (recent enough that retention would keep them): the history whose size the figures must
    not depend on."""
    now = time.time()
    done = 0
    while done < rows:
        n = min(chunk, rows - done)
        batch = [
            (
                slugs[(done + i) % len(slugs)],
                f"hist-{done + i:09d}",
                "posted",
                f"{1_700_000_000 + done + i}.000100",
                '{"channel": "C0BENCH"}',
                now - 3600,
                now - 3600,
            )
            for i in range(n)
        ]
        with store.tx() as db:
            db.executemany(
                "INSERT INTO ledger (slug, event_id, status, chat_ref, payload, created_at,"
                " posted_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                batch,
            )
        done += n


def store_mb(fleet_root: Path) -> float:
    """A bench fleet's SQLite state on disk (database and WAL), in MB."""
    return sum(p.stat().st_size for p in (fleet_root / "state").glob("state.db*")) / 2**20
