"""PR reviews without a CLI: references, templates, dedupe, the run against a local bare repo
and the stand-in ``gh`` (a recording chat backend instead of Slack), threads, cleanup."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.channel.commands import Commands
from bridge.chat.protocol import Outgoing, Posted
from bridge.config.model import ConfigError, parse_config
from bridge.config.review import seconds
from bridge.config.spawned import load_fleet, spawned_dir
from bridge.mirror.routing import TurnRouter
from bridge.review.ledger import Reviews
from bridge.review.pr import BadReference, PullRequest, fill, parse_ref
from bridge.review.service import ReviewService, reviewer_slug
from bridge.store.db import Store
from bridge.store.queue import Kind, QueueItem
from runtimes.events import Event, EventKind
from tests.review_support import GhStub, PrRemote

ALICE, MALLORY = "UALICE", "UMALLORY"


def test_references_durations_and_task_placeholders() -> None:
    assert parse_ref("42") == (42, None)
    assert parse_ref("#7") == (7, None)
    assert parse_ref("https://github.com/acme/widgets/pull/42") == (42, "acme/widgets")
    assert parse_ref("<https://github.com/acme/widgets/pull/42/files|#42>") == (42, "acme/widgets")
    with pytest.raises(BadReference):
        parse_ref("pull 42")
    assert [seconds(v) for v in (90, "90s", "5m", "2h", "1d", "0.5s")] == [
        90.0, 90.0, 300.0, 7200.0, 86400.0, 0.5,
    ]  # fmt: skip
    pr = PullRequest(42, "Add widgets", "https://x/pull/42", "abc123", "main", "feature")
    task = "Review #{number} {title} {url} {base}<-{head} at {sha} from {base_sha} {json: {x}}"
    assert fill(task, pr, Path("/r"), "000") == (
        "Review #42 Add widgets https://x/pull/42 main<-feature at abc123 from 000 {json: {x}}"
    )
    assert reviewer_slug("r" * 60, 42, "abcdef0123") == "r" * 44 + "-42-abcdef0"


def test_review_template_is_validated_and_never_runs_itself(tmp_path: Path) -> None:
    remote = PrRemote(tmp_path)
    text = yaml.safe_dump(
        {
            "agents": [
                {
                    "slug": "reviewer",
                    "workdir": str(tmp_path),
                    "review": {"repo": str(remote.repo), "worktrees": "reviews", "keep_for": "2h"},
                },
                {"slug": "other", "workdir": str(tmp_path)},
            ]
        }
    )
    config = parse_config(text, tmp_path / "agents.yaml")
    review = config.agents[0].review
    assert review is not None and review.keep_for == 7200 and review.poll is None
    assert review.worktrees == tmp_path / "reviews"
    assert [a.slug for a in config.enabled_agents()] == ["other"]
    bad = text.replace(str(remote.repo), str(tmp_path / "nope")).replace("2h", "soon")
    with pytest.raises(ConfigError) as err:
        parse_config(bad, tmp_path / "agents.yaml")
    assert any("review.repo" in e and "not a git repository" in e for e in err.value.errors)
    assert any("keep_for" in e and "not a duration" in e for e in err.value.errors)


def test_ledger_one_review_per_pr_head(tmp_path: Path) -> None:
    ledger = Reviews(Store(tmp_path / "state.db"))
    fields = {"repo": "/r", "number": 42, "head": "a1", "ref": "42", "via": "slack", "slug": "x"}
    first, _ = ledger.begin(fields)
    assert first is not None
    again, busy = ledger.begin({**fields, "head": "b2"})  # a new head while one runs
    assert again is None and busy is not None and busy.status == "running"
    assert ledger.finish(first, "done", 60, None) and not ledger.finish(first, "done", 60, None)
    same, seen = ledger.begin(fields)  # that head was reviewed
    assert same is None and seen is not None and seen.status == "done"
    moved, _ = ledger.begin({**fields, "head": "b2"})
    assert moved is not None
    assert [r.id for r in ledger.due(time.time() + 61)] == [first]


def test_a_pinned_agent_threads_every_turn_under_its_header() -> None:
    router = TurnRouter()
    router.pin("rev", "111.1")
    item = QueueItem(1, "rev", Kind.TASK, "Review #42", {"via": "task"}, "confirmed", 0.0)
    router.origin("rev", item)
    prompt = router.route("rev", Event(EventKind.USER_PROMPT, "e1", text="Review #42"))
    assert prompt.thread == "111.1" and prompt.header and not prompt.skip
    answer = router.route("rev", Event(EventKind.ASSISTANT_TEXT, "e2", text="ack"))
    assert answer.thread == "111.1"
    assert router.route("other", Event(EventKind.ASSISTANT_TEXT, "e3", text="x")).thread is None


class Recorder:
    """A chat backend that records what the review service posts and edits."""

    name = "recorder"
    coalesce = False
    live_status = False
    command_handler = None

    def __init__(self) -> None:
        self.channels: dict[str, str] = {}
        self.posts: list[Outgoing] = []
        self.updates: list[tuple[str, str, str]] = []
        self.resolved: list[list[str]] = []

    async def resolve_channels(self, wanted: Sequence[str]) -> list[str]:
        self.resolved.append(list(wanted))
        return []

    async def post(self, msg: Outgoing) -> Posted:
        self.posts.append(msg)
        return Posted(f"{len(self.posts)}.0")

    async def update(self, channel: str, ref: str, text: str) -> None:
        self.updates.append((channel, ref, text))


async def until(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_review_run_dedupe_finish_with_link_and_cleanup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = PrRemote(tmp_path)
    head = remote.push_head(42, "first")
    gh = GhStub(tmp_path)
    gh.install(monkeypatch)
    gh.pr(42, head)
    workdir = tmp_path / "work"
    workdir.mkdir()
    config_path = tmp_path / "agents.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "agents": [
                    {
                        "slug": "reviewer",
                        "workdir": str(workdir),
                        "channel": "#pr-reviews",
                        "allowed_users": [ALICE],
                        "review": {
                            "repo": str(remote.repo),
                            "worktrees": str(tmp_path / "reviews"),
                            "keep_for": "0.5s",
                            "task": "Review #{number} ({title}) at {sha}",
                        },
                    }
                ]
            }
        )
    )
    state = tmp_path / "state"
    store = Store(state / "state.db")
    backend = Recorder()
    router = TurnRouter()
    commands = Commands(load_fleet(config_path, state), None, None, None)  # type: ignore[arg-type]

    async def scenario() -> None:
        svc = ReviewService(
            load_fleet(config_path, state),
            config_path,
            state,
            store,
            backend,
            router,
            lambda _: None,
        )
        verb: Callable[[str, str, str], Awaitable[str]] = svc.command
        commands.verbs["review"] = verb
        refused = await commands.run(MALLORY, "C1", "review 42")
        assert "not allowed" in refused
        started = await commands.run(ALICE, "C1", "review 42")
        assert "Starting a review of #42" in started, started
        slug = reviewer_slug("reviewer", 42, head)
        ledger = await svc._ledger()
        review = await until(lambda: (r := ledger.by_slug(slug)) and r.header and r, "header")
        # A second request while it runs is refused with a note; no second header.
        busy = await commands.run(ALICE, "C1", "review https://github.com/acme/widgets/pull/42")
        assert "already under review" in busy
        assert len(backend.posts) == 1 and "Reviewing #42 Add widgets" in backend.posts[0].text
        assert head[:12] in backend.posts[0].text and backend.posts[0].channel == "#pr-reviews"
        assert router.pinned(slug) == review.header
        # The worktree is at the PR's head; the spawned reviewer runs there with its task.
        worktree = Path(str(review.worktree))
        assert (worktree / "change-42.txt").read_text() == "first"
        spawned = yaml.safe_load((spawned_dir(state) / f"{slug}.yaml").read_text())
        assert spawned["workdir"] == str(worktree) and "review" not in spawned
        assert spawned["task"] == f"Review #42 (Add widgets) at {head}"
        assert spawned["ephemeral"] is True
        assert slug in {a.slug for a in load_fleet(config_path, state).enabled_agents()}
        # The agent posted its review on the PR; the task turn ends: the header says done.
        gh.review(42, head, "2999-01-01T00:00:00Z", "https://github.com/acme/widgets/pull/42#r1")
        svc.finished(slug)
        await until(lambda: backend.updates, "header edited")
        channel, ref, text = backend.updates[-1]
        assert (channel, ref) == ("#pr-reviews", review.header)
        assert "Reviewed #42" in text and "pull/42#r1" in text
        # After keep_for: spawned definition and worktree gone; the thread is unpinned.
        await until(lambda: ledger.due(), "keep_for over", 10)
        await svc._pass(ledger)
        assert not worktree.exists()
        assert not (spawned_dir(state) / f"{slug}.yaml").exists()
        assert router.pinned(slug) is None
        assert ledger.get(review.id).status == "cleaned"  # type: ignore[union-attr]
        # The same head again: already reviewed, nothing started.
        assert "already reviewed" in await commands.run(ALICE, "C1", "review 42")
        assert len(backend.posts) == 1

    asyncio.run(scenario())


def test_command_line_request_is_taken_by_the_runner_and_clean_removes_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bridge.review.command_line import ask, clean_now

    remote = PrRemote(tmp_path)
    head = remote.push_head(7, "seven")
    gh = GhStub(tmp_path)
    gh.install(monkeypatch)
    gh.pr(7, head, title="Fix gears")
    workdir = tmp_path / "work"
    workdir.mkdir()
    config_path = tmp_path / "agents.yaml"
    review = {"repo": str(remote.repo), "worktrees": str(tmp_path / "reviews"), "keep_for": "1d"}
    config_path.write_text(
        yaml.safe_dump({"agents": [{"slug": "rev", "workdir": str(workdir), "review": review}]})
    )
    state = tmp_path / "state"
    backend = Recorder()

    async def scenario() -> None:
        store = Store(state / "state.db")
        svc = ReviewService(
            load_fleet(config_path, state), config_path, state, store, backend, TurnRouter(),
            lambda _: None,
        )  # fmt: skip
        stop = asyncio.Event()
        runner = asyncio.create_task(svc.run(stop))
        assert await asyncio.to_thread(ask, state, "7", None, 30.0, True) == 0
        assert await asyncio.to_thread(ask, state, "#7", "rev", 30.0, True) == 1
        assert await asyncio.to_thread(ask, state, "8", "nope", 30.0, True) == 1
        assert await asyncio.to_thread(ask, state, "99", None, 30.0, True) == 1
        slug = reviewer_slug("rev", 7, head)
        ledger = await svc._ledger()
        running = ledger.by_slug(slug)
        assert running is not None and Path(str(running.worktree)).exists()
        svc.finished(slug)
        await until(lambda: backend.updates, "done")
        stop.set()
        await runner
        assert clean_now(state) == 0  # keep_for is a day: --clean does not wait for it
        assert not Path(str(running.worktree)).exists()
        assert not (spawned_dir(state) / f"{slug}.yaml").exists()

    asyncio.run(scenario())
    out = capsys.readouterr()
    assert "reviewing #7 Fix gears" in out.out and "cleaned 1 finished review(s)" in out.out
    assert "already under review" in out.err and "No reviewer template `nope`" in out.err
    assert "Could not resolve to a PullRequest" in out.err
