"""Inbound routing between two hosts' runners, in one process: the real :class:`RoutedBackend`
on each side of a real Postgres (one pool per "host", as two runners have), real Slack backends
against the loopback emulator, the real channel side (``Inbound``, ``PromptQueue``,
``Answers``, ``ReviewService``'s template choice).

Only host ``b``'s backend holds a Socket Mode connection, so Slack hands every event to ``b``
and everything for ``a``'s agents is routed. What is checked here is the routed row's life:
done only once its prompt is queued (an error in handling leaves it to be drained again, and
after a bounded number of attempts the sender is told), modal submissions and ``/agent
review`` reach the owning host, a waiting question is woken by an answer committed on the
other host, and, with the store failing at random on both hosts, nothing is lost or doubled.
"""

from __future__ import annotations

import asyncio
import subprocess
import textwrap
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bridge.answers.book import AskBook
from bridge.answers.service import Answers
from bridge.channel.inbound import Inbound
from bridge.chat.protocol import Action, ChatBackend, NotKept
from bridge.chat.slack.backend import SlackBackend
from bridge.cluster.placement import local_fleet
from bridge.cluster.router import RoutedBackend
from bridge.cluster.rows import MAX_ATTEMPTS, EventRows
from bridge.config.model import Config, load_config
from bridge.devtools import store_faults
from bridge.lifecycle.activity import ActivityTracker
from bridge.review.ledger import Reviews
from bridge.review.service import ReviewService
from bridge.store.hosts import HostBook
from bridge.store.pg import PgStore
from bridge.store.queue import PromptQueue
from runtimes.asks import Answer, Ask, Option, Question
from tests.pg import pg_cluster, pg_url

__all__ = ["pg_cluster", "pg_url"]

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
CHANNELS = ["#agent-a1", "#agent-b1", "#agent-rev"]


async def until(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``cond`` (run in a thread: it may query the database) until it is truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await asyncio.to_thread(cond)
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def consume(backend: ChatBackend, inbound: Inbound) -> None:
    """What ``ChatBridge.run`` does with each incoming message."""
    async for incoming in backend.receive():
        try:
            await inbound.handle(incoming)
        except Exception as err:
            if incoming.receipt is not None:
                incoming.receipt.refuse(NotKept(f"not queued: {err}"))


class Host:
    def __init__(self, name: str, store: PgStore, inner: SlackBackend, routed: RoutedBackend):
        self.name = name
        self.store = store
        self.inner = inner
        self.routed = routed
        self.queue = PromptQueue(store)
        self.commands: list[str] = []
        self.actions: list[Action] = []


class Rig:
    def __init__(self, slack: Any, url: str, config: Config, tmp: Path, alice: str) -> None:
        self.slack = slack
        self.url = url
        self.config = config
        self.tmp = tmp
        self.alice = alice
        self.channel = {
            name: slack.add_channel(name[1:], members=[self.alice]) for name in CHANNELS
        }
        self.hosts: dict[str, Host] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.faults: dict[str, store_faults.Faults] = {}

    async def start(self, faults: float | None = None) -> None:
        for name in ("a", "b"):
            store = await asyncio.to_thread(PgStore, self.url)
            if faults is not None:  # armed by the scenario, once the rig is up
                self.faults[name] = store_faults.install(store, faults, seed=ord(name))
                self.faults[name].enabled = False
            inner = SlackBackend(self.slack.bot_token, self.slack.app_token, self.slack.api_url)
            if name == "b":
                await inner.start()  # the one connection: Slack hands b every event
            await inner.resolve_channels(CHANNELS)
            routed = RoutedBackend(
                inner, store, name, self.config, poll_s=0.2, reply_wait_s=10, backoff_s=0.05
            )
            host = self.hosts[name] = Host(name, store, inner, routed)
            await asyncio.to_thread(HostBook(store).beat, name, "test")
            inbound = Inbound(
                self.config,
                host.queue,
                routed,
                self.tmp / name / "inbox",
                channel_ids=lambda r=routed: dict(r.channels),  # type: ignore[misc]
            )
            routed.command_handler = self._commands(host)
            routed.on_action = self._actions(host)
            self.tasks.append(asyncio.create_task(consume(routed, inbound)))

    @staticmethod
    def _commands(host: Host) -> Callable[[str, str, str], Awaitable[str]]:
        async def handler(user: str, channel: str, text: str) -> str:
            host.commands.append(text)
            return f"ran `{text}` on {host.name}"

        return handler

    @staticmethod
    def _actions(host: Host) -> Callable[[Action], Awaitable[str | None]]:
        async def handler(action: Action) -> str | None:
            host.actions.append(action)
            return f"took it on {host.name}"

        return handler

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return list(conn.execute(query.encode(), params or None).fetchall())

    def queued(self, slug: str) -> list[str]:
        return [r[0] for r in self.sql("SELECT dedupe_key FROM prompt_queue WHERE slug = %s", slug)]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for host in self.hosts.values():
            await host.routed.close()
            await asyncio.to_thread(host.store.close)


@pytest.fixture
def alice(slack: Any) -> str:
    return str(slack.add_user("alice", "Alice"))


@pytest.fixture
def config(tmp_path: Path, alice: str) -> Config:
    work = tmp_path / "work"
    repo = tmp_path / "repo"
    for folder in (work, repo):
        folder.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    path = tmp_path / "agents.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        agents:
          - {{slug: a1, workdir: {work}, host: a, channel: "#agent-a1", allowed_users: [{alice}]}}
          - {{slug: b1, workdir: {work}, host: b, channel: "#agent-b1", allowed_users: [{alice}]}}
          - slug: rev
            workdir: {work}
            host: a
            channel: "#agent-rev"
            allowed_users: [{alice}]
            review: {{repo: {repo}, worktrees: {tmp_path / "reviews"}}}
        host_down_after_seconds: 60
        """),
        encoding="utf-8",
    )
    return load_config(path, {"HOME": str(tmp_path), "AGENTBRIDGE_HOST": "a"})


@pytest.fixture
def rig(slack: Any, pg_url: str, config: Config, tmp_path: Path, alice: str) -> Iterator[Rig]:
    yield Rig(slack, pg_url, config, tmp_path, alice)


def run(rig: Rig, scenario: Callable[[], Awaitable[None]], faults: float | None = None) -> None:
    async def main() -> None:
        await rig.start(faults)
        try:
            await scenario()
        finally:
            await rig.stop()

    asyncio.run(main())


def test_a_routed_message_whose_handling_fails_is_drained_again_and_queued_once(
    rig: Rig,
) -> None:
    channel = rig.channel["#agent-a1"]

    async def scenario() -> None:
        queue = rig.hosts["a"].queue
        enqueue = queue.enqueue
        # not a database blip (those are tried again at once, inside the one attempt)
        failures = [OSError(28, "No space left on device")]

        def flaky(*args: Any, **kwargs: Any) -> int | None:
            if failures:
                raise failures.pop()
            return enqueue(*args, **kwargs)

        queue.enqueue = flaky  # type: ignore[method-assign]
        ts = rig.slack.post_as_user(rig.alice, channel, "steer a1 through b")
        key = f"slack:{channel}:{ts}"
        await until(lambda: rig.queued("a1"), 30, "the message queued on its second attempt")
        assert rig.queued("a1") == [key]
        rows = await until(
            lambda: rig.sql(
                "SELECT attempts, outcome FROM inbound_events WHERE done_at IS NOT NULL"
            ),
            10,
            "the row done",
        )
        assert rows == [(1, "handled")]  # one failed attempt, then done with its prompt

    run(rig, scenario)


def test_a_routed_message_that_keeps_failing_is_closed_and_its_sender_told(rig: Rig) -> None:
    channel = rig.channel["#agent-a1"]

    async def scenario() -> None:
        def broken(*args: Any, **kwargs: Any) -> int | None:
            raise psycopg.OperationalError("server closed the connection unexpectedly")

        rig.hosts["a"].queue.enqueue = broken  # type: ignore[method-assign]
        ts = rig.slack.post_as_user(rig.alice, channel, "never queued")

        def told() -> list[str]:
            return [
                str(m.get("text", ""))
                for m in rig.slack.thread(channel, ts)
                if "Not delivered to `a1`" in str(m.get("text", ""))
            ]

        [note] = await until(told, 60, "the sender told")
        assert f"failed {MAX_ATTEMPTS} times" in note and "server closed" in note
        rows = rig.sql("SELECT attempts, outcome, done_at IS NOT NULL FROM inbound_events")
        assert rows == [(MAX_ATTEMPTS, "failed", True)]
        assert rig.queued("a1") == []

    run(rig, scenario)


def test_agent_review_runs_on_the_templates_host(rig: Rig, tmp_path: Path) -> None:
    """``/agent review 42 rev`` reaching host b is routed to a, which owns template ``rev``
    (b runs only its own agents, as its runner does); and a review asked for with
    ``agentbridge review`` (a row in the shared ledger) is left for a to take."""

    async def scenario() -> None:
        b = rig.hosts["b"]
        local = local_fleet(rig.config, "b", shared=True)
        reviews = ReviewService(
            local, tmp_path / "agents.yaml", tmp_path / "b", b.store, b.routed, None,  # type: ignore[arg-type]
            lambda slug: None, fleet=rig.config,
        )  # fmt: skip
        b.routed.command_owners["review"] = reviews.owner
        assert b.inner.command_handler is not None
        channel = rig.channel["#agent-rev"]
        reply = await b.inner.command_handler(rig.alice, channel, "review 42 rev")
        assert reply == "ran `review 42 rev` on a"
        assert rig.hosts["a"].commands == ["review 42 rev"] and b.commands == []
        # named by its channel alone, the same
        reply = await b.inner.command_handler(rig.alice, channel, "review 43")
        assert reply == "ran `review 43` on a"
        ledger = Reviews(b.store)
        asked = await asyncio.to_thread(ledger.request, "44", "rev", "cli")
        await reviews._pass(ledger)  # one pass of b's review loop
        row = await asyncio.to_thread(ledger.get, asked)
        assert row is not None and row.status == "requested"  # not refused by b: a's to take

    run(rig, scenario)


def _question() -> Ask:
    options = (Option("red"), Option("blue"))
    return Ask(
        kind="question",
        key="tool-1",
        event="PreToolUse",
        questions=(Question("Which colour?", options=options),),
    )


def test_a_modal_answer_handed_to_another_host_reaches_the_asking_agents_host(rig: Rig) -> None:
    async def scenario() -> None:
        a, b = rig.hosts["a"], rig.hosts["b"]
        row, _ = await asyncio.to_thread(AskBook(a.store).open_or_create, "a1", _question())
        answers_b = Answers(rig.config, b.store, b.routed, ActivityTracker(), lambda s: None)
        b.routed.form_owner = answers_b.form_owner
        submitted = Action(
            user=rig.alice,
            channel="",  # Slack sends a view submission without a channel
            message_ref="",
            action_id=f"q:{row.id}:otherform:0",
            form={"answer.text": "green"},
            private_metadata=str(row.id),
        )
        assert b.inner.on_action is not None
        reply = await b.inner.on_action(submitted)
        assert reply == "took it on a"
        [got] = a.actions
        assert got.action_id == submitted.action_id and dict(got.form) == {"answer.text": "green"}
        assert b.actions == []

    run(rig, scenario)


def test_a_waiting_question_wakes_on_an_answer_committed_by_another_host(rig: Rig) -> None:
    async def scenario() -> None:
        a, b = rig.hosts["a"], rig.hosts["b"]
        answers = Answers(rig.config, a.store, a.routed, ActivityTracker(), lambda s: None)
        row, _ = await asyncio.to_thread(AskBook(a.store).open_or_create, "a1", _question())
        _, waiter = await answers.posted_waiter(row)
        chosen = Answer("answers", {"Which colour?": "blue"})
        assert await asyncio.to_thread(AskBook(b.store).answer, row.id, chosen, rig.alice, "blue")
        got = await asyncio.wait_for(asyncio.shield(waiter), 30)
        assert got == chosen
        await answers.close()

    run(rig, scenario)


def test_a_routed_click_answer_is_committed_before_the_waiting_hook_is_woken(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer is durable before anything acts on it, as on a single box: not held in the
    drain's open transaction (which a later failure would roll back after the hook ran)."""
    settle = EventRows.finish

    def slow(self: EventRows, claim: Any, outcome: str, error: str | None) -> str:
        time.sleep(1.0)  # the drain's transaction stays open a while after the handler
        return settle(self, claim, outcome, error)

    monkeypatch.setattr(EventRows, "finish", slow)

    async def scenario() -> None:
        a, b = rig.hosts["a"], rig.hosts["b"]
        answers = Answers(rig.config, a.store, a.routed, ActivityTracker(), lambda s: None)
        a.routed.on_action = answers.on_action
        ask = Ask(kind="approval", key="tool-ls", event="PermissionRequest", command="ls")
        row, _ = await asyncio.to_thread(AskBook(a.store).open_or_create, "a1", ask)
        row, waiter = await answers.posted_waiter(row)
        seen: list[str] = []
        waiter.add_done_callback(
            lambda _: seen.extend(
                str(r[0]) for r in rig.sql("SELECT status FROM asks WHERE id = %s", row.id)
            )
        )
        click = Action(
            rig.alice, rig.channel["#agent-a1"], row.message_ref or "", f"q:{row.id}:deny"
        )
        assert b.inner.on_action is not None
        await b.inner.on_action(click)
        assert (await asyncio.wait_for(waiter, 30)).verdict == "deny"
        assert seen == ["answered"]
        await answers.close()

    run(rig, scenario)


def test_with_the_store_failing_at_random_on_both_hosts_nothing_is_lost_or_doubled(
    rig: Rig,
) -> None:
    """A share of all store calls fails on both hosts (receiving: the row's insert; owning:
    the claim, the joined enqueue, the done mark): every message is queued exactly once, and
    an approval denied by a click that travels through the same faults ends denied."""
    total = 40

    async def scenario() -> None:
        a, b = rig.hosts["a"], rig.hosts["b"]
        answers = Answers(rig.config, a.store, a.routed, ActivityTracker(), lambda s: None)
        a.routed.on_action = answers.on_action  # the owner's click side
        ask = Ask(kind="approval", key="tool-rm", event="PermissionRequest", command="rm -r x")
        row, _ = await asyncio.to_thread(AskBook(a.store).open_or_create, "a1", ask)
        row, waiter = await answers.posted_waiter(row)
        for faults in rig.faults.values():
            faults.enabled = True
        deny = Action(
            rig.alice, rig.channel["#agent-a1"], row.message_ref or "", f"q:{row.id}:deny"
        )
        assert b.inner.on_action is not None
        for _ in range(20):  # a click whose routing failed is clicked again, as a person would
            if waiter.done():
                break
            await b.inner.on_action(deny)
        assert (await waiter).verdict == "deny"
        sent: dict[str, list[str]] = {"a1": [], "b1": []}
        for i in range(total):
            for slug in sent:
                channel = rig.channel[f"#agent-{slug}"]
                ts = await asyncio.to_thread(
                    rig.slack.post_as_user, rig.alice, channel, f"note {i} for {slug}"
                )
                sent[slug].append(f"slack:{channel}:{ts}")
        for slug, keys in sent.items():
            try:
                await until(lambda s=slug, k=keys: set(rig.queued(s)) >= set(k), 90, f"{slug} all")
            except AssertionError:
                missing = sorted(set(keys) - set(rig.queued(slug)))
                rows = rig.sql(
                    "SELECT event_id, ts, attempts, done_at, outcome FROM inbound_events"
                )
                print("missing", missing, "\nrows", [r for r in rows if f"{r[1]}" in str(missing)])
                raise
        for slug, keys in sent.items():
            got = rig.queued(slug)
            assert sorted(got) == sorted(keys), f"{slug}: lost or duplicated"
        assert all(f.injected > 0 for f in rig.faults.values()), "no fault was injected"
        stored = rig.sql("SELECT status, answer FROM asks WHERE id = %s", row.id)
        assert len(stored) == 1 and '"deny"' in stored[0][1], stored
        audit = rig.sql("SELECT action FROM answer_audit WHERE ask_id = %s", row.id)
        assert audit == [("answered",)], audit  # one answer, the one chosen
        await answers.close()

    run(rig, scenario, faults=0.1)
