"""Questions and approvals without CLIs: the blocking hook path, the durable book, the messages,
the click rules, the no-answer policy, and the runtimes' hook settings and answer shapes."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from bridge.answers.blocks import ask_blocks, closed_blocks, parse_action
from bridge.answers.book import AskBook, status_of
from bridge.answers.policy import timeout_answer
from bridge.answers.service import Answers
from bridge.chat.protocol import Action, Outgoing, Posted
from bridge.config.asks import AnswerPolicy
from bridge.config.model import parse_config
from bridge.devtools.slack_emulator_blocks import validate_blocks
from bridge.hooks import client
from bridge.hooks.server import HookMessage, HookServer, TokenBook
from bridge.lifecycle.activity import Activity, ActivityTracker
from bridge.store.db import Store
from runtimes import LaunchContext, get_runtime
from runtimes.asks import Answer, approval_ask, ask_output, question_ask
from runtimes.claude import ClaudeRuntime
from runtimes.codex import CodexRuntime

QUESTION = {
    "session_id": "s1",
    "hook_event_name": "PreToolUse",
    "tool_name": "AskUserQuestion",
    "tool_use_id": "toolu_1",
    "tool_input": {
        "questions": [
            {
                "question": "Which color?",
                "header": "Color",
                "options": [
                    {"label": "red", "description": "the red one"},
                    {"label": "blue", "description": "the blue one"},
                ],
                "multiSelect": False,
            }
        ]
    },
}
APPROVAL = {
    "session_id": "s1",
    "prompt_id": "p1",
    "hook_event_name": "PermissionRequest",
    "tool_name": "Bash",
    "tool_input": {"command": "touch f", "description": "run"},
}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "state.db")


# -- runtimes: what the CLIs are told and what they are answered ------------------------------


def ctx(tmp_path: Path, **kw: Any) -> LaunchContext:
    return LaunchContext(slug="a", workdir=tmp_path, bin="x", env={}, hook_command="/ab hook", **kw)


def test_claude_blocks_only_for_questions_and_under_ask_for_approvals(tmp_path: Path) -> None:
    runtime = ClaudeRuntime()
    hooks = runtime.settings(ctx(tmp_path))["hooks"]
    relay, wait = hooks["PreToolUse"]
    assert relay["hooks"][0] == {"type": "command", "command": "/ab hook PreToolUse", "timeout": 10}
    assert wait["matcher"] == "AskUserQuestion"
    assert wait["hooks"][0]["command"] == "/ab hook wait:PreToolUse"
    assert wait["hooks"][0]["timeout"] >= 86400  # "wait": a person may take their time
    assert "PermissionRequest" not in hooks
    assert all(h["hooks"][0]["timeout"] == 10 for e, hs in hooks.items() for h in hs[:1])
    argv = runtime.plan_launch(ctx(tmp_path)).argv
    assert "--dangerously-skip-permissions" in argv

    asked = ctx(tmp_path, permissions="ask", permission_mode="acceptEdits", ask_timeout_s=720)
    hooks = runtime.settings(asked)["hooks"]
    assert hooks["PermissionRequest"][0]["hooks"][0] == {
        "type": "command",
        "command": "/ab hook wait:PermissionRequest",
        "timeout": 720,
        "onFailure": "block",  # a failed hook blocks the call: no dialog drawn for the pane
    }
    argv = runtime.plan_launch(asked).argv
    assert "--dangerously-skip-permissions" not in argv
    assert argv[argv.index("--permission-mode") + 1] == "acceptEdits"


def test_codex_asks_through_a_blocking_permission_hook_only_under_ask(tmp_path: Path) -> None:
    runtime = CodexRuntime()
    flags = runtime.flags(ctx(tmp_path))
    assert "--dangerously-bypass-approvals-and-sandbox" in flags
    assert not any("wait:" in f for f in flags)
    flags = runtime.flags(ctx(tmp_path, permissions="ask", ask_timeout_s=900))
    assert "--dangerously-bypass-approvals-and-sandbox" not in flags
    assert 'approval_policy="on-request"' in flags
    assert 'sandbox_mode="workspace-write"' in flags
    (perm,) = [f for f in flags if f.startswith("hooks.PermissionRequest")]
    assert '"/ab hook wait:PermissionRequest"' in perm and "timeout=900" in perm
    assert runtime.parse_ask("PreToolUse", QUESTION) is None  # no Codex questions by hook
    assert runtime.ask_support("0.120.0").approvals is False
    assert runtime.ask_support("codex-cli 0.136.0").approvals is True
    assert runtime.ask_conflict(["--yolo"]) and not runtime.ask_conflict(["-m", "gpt-5"])


def test_answer_shapes_are_the_verified_ones() -> None:
    ask = question_ask("PreToolUse", QUESTION)
    assert ask is not None and ask.key == "toolu_1"
    out = ask_output(ask, Answer("answers", {"Which color?": "blue"}))
    assert out == {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "allow",
            "updatedInput": {**QUESTION["tool_input"], "answers": {"Which color?": "blue"}},
        }
    }
    refused = ask_output(ask, Answer("refuse", message="nobody"))["hookSpecificOutput"]
    assert (
        refused["permissionDecision"] == "deny" and refused["permissionDecisionReason"] == "nobody"
    )

    perm = get_runtime("claude").parse_ask("PermissionRequest", APPROVAL)
    assert perm is not None and perm.command == "touch f"
    assert perm.key == approval_ask("PermissionRequest", dict(APPROVAL)).key  # stable on resend
    decision = lambda v, m="": ask_output(perm, Answer(v, message=m))["hookSpecificOutput"][  # noqa: E731
        "decision"
    ]
    assert decision("allow") == {"behavior": "allow"}
    assert decision("deny", "no") == {"behavior": "deny", "message": "no"}
    assert decision("allow_session")["updatedPermissions"] == [
        {
            "type": "addRules",
            "rules": [{"toolName": "Bash", "ruleContent": "touch f"}],
            "behavior": "allow",
            "destination": "session",
        }
    ]
    assert approval_ask("PermissionRequest", QUESTION | {"hook_event_name": "x"}) is None


# -- the blocking hook: held, answered once, reconnecting after a runner restart --------------


def test_blocking_hook_reconnects_to_a_new_runner_and_prints_one_answer(
    tmp_path: Path, store: Store
) -> None:
    sock = tmp_path / "hooks.sock"
    tokens = TokenBook(store)
    token = tokens.issue("a")
    env = {
        "AGENTBRIDGE_HOOK_SOCKET": str(sock),
        "AGENTBRIDGE_SLUG": "a",
        "AGENTBRIDGE_HOOK_TOKEN": token,
    }
    seen: list[HookMessage] = []
    printed = io.StringIO()

    def run_client() -> None:
        import contextlib

        with contextlib.redirect_stdout(printed):
            client.main("wait:PreToolUse", io.StringIO(json.dumps(QUESTION)), env)

    async def scenario() -> None:
        first_in = asyncio.Event()

        async def never(msg: HookMessage) -> dict[str, Any]:
            seen.append(msg)
            first_in.set()
            await asyncio.Event().wait()  # the first runner dies before anyone answers
            return {}

        first = HookServer(sock, tokens, lambda m: None, never)
        await first.start()
        thread = threading.Thread(target=run_client)
        thread.start()
        await asyncio.wait_for(first_in.wait(), 10)
        await first.close()  # runner gone: the client reconnects every second

        async def answer(msg: HookMessage) -> dict[str, Any]:
            seen.append(msg)
            return {"output": {"answered": msg.payload["tool_use_id"]}}

        second = HookServer(sock, TokenBook(store), lambda m: None, answer)
        await second.start()
        await asyncio.to_thread(thread.join, 30)
        await second.close()
        assert not thread.is_alive()

    asyncio.run(scenario())
    assert [m.payload["tool_use_id"] for m in seen] == ["toolu_1", "toolu_1"]
    assert json.loads(printed.getvalue()) == {"answered": "toolu_1"}


def test_a_client_that_leaves_cancels_the_wait(tmp_path: Path, store: Store) -> None:
    sock = tmp_path / "hooks.sock"
    tokens = TokenBook(store)
    token = tokens.issue("a")
    message = {"v": 1, "event": "PreToolUse", "slug": "a", "token": token, "wait": True}

    async def scenario() -> bool:
        cancelled = asyncio.Event()

        async def held(msg: HookMessage) -> dict[str, Any]:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return {}

        server = HookServer(sock, tokens, lambda m: None, held)
        await server.start()
        _reader, writer = await asyncio.open_unix_connection(str(sock))
        writer.write(json.dumps(message).encode() + b"\n")
        await writer.drain()
        await asyncio.sleep(0)
        writer.close()  # the CLI killed its hook (an interrupt, a terminal answer)
        await asyncio.wait_for(cancelled.wait(), 10)
        await server.close()
        return cancelled.is_set()

    assert asyncio.run(scenario())


# -- the durable book ---------------------------------------------------------------------------


def test_book_finds_a_resent_ask_and_takes_one_answer(store: Store) -> None:
    book = AskBook(store)
    ask = question_ask("PreToolUse", QUESTION)
    assert ask is not None
    row, created = book.open_or_create("a", ask)
    again, created_again = book.open_or_create("a", ask)
    assert created and not created_again and again.id == row.id
    assert book.answer(row.id, Answer("answers", {"Which color?": "red"}), "U1", "red")
    assert not book.answer(row.id, Answer("answers", {"Which color?": "blue"}), "U2", "blue")
    book.delivered(row.id)
    resent, created = book.open_or_create("a", ask)  # the hook missed the reply: same answer
    assert not created and resent.answer == Answer("answers", {"Which color?": "red"})
    status = status_of(store, "a")
    assert status["waiting"] is None
    assert [(a["user"], a["action"], a["what"]) for a in status["answers"]] == [
        ("U1", "answered", "red")
    ]


# -- the messages ----------------------------------------------------------------------------


def test_messages_are_valid_block_kit_and_name_their_ask() -> None:
    ask = question_ask("PreToolUse", QUESTION)
    multi = question_ask(
        "PreToolUse",
        {
            **QUESTION,
            "tool_input": {
                "questions": [{**QUESTION["tool_input"]["questions"][0], "multiSelect": True}]
            },
        },
    )
    perm = approval_ask("PermissionRequest", APPROVAL)
    assert ask and multi and perm
    for made in (ask_blocks("a", 7, ask), ask_blocks("a", 7, multi), ask_blocks("a", 7, perm)):
        validate_blocks(made)  # what Slack (and the emulator) accepts
        ids = [
            el["action_id"]
            for b in made
            for el in [*(b.get("elements") or []), *([b["accessory"]] if "accessory" in b else [])]
        ]
        assert ids and all((click := parse_action(i)) and click.ask_id == 7 for i in ids)
    assert "the blue one" in json.dumps(ask_blocks("a", 7, ask))
    assert parse_action("q:7:opt:0:1") == parse_action("q:7:opt:0:1")
    assert parse_action("stuck:1") is None and parse_action("q:x:opt") is None
    closed = closed_blocks("a", ask, "done")
    validate_blocks(closed)
    assert "button" not in json.dumps(closed)


def test_timeout_policy_answers() -> None:
    ask = question_ask("PreToolUse", QUESTION)
    perm = approval_ask("PermissionRequest", APPROVAL)
    assert ask and perm
    first = AnswerPolicy(timeout_minutes=5, on_timeout="default")
    assert timeout_answer(ask, first, 5)[0] == Answer("answers", {"Which color?": "red"})
    text = AnswerPolicy(timeout_minutes=5, on_timeout="default", default_answer="any")
    assert timeout_answer(ask, text, 5)[0].answers == {"Which color?": "any"}
    refused, _said = timeout_answer(ask, AnswerPolicy(timeout_minutes=5), 5)
    assert refused.verdict == "refuse" and "Nobody answered within 5 min" in refused.message
    assert timeout_answer(perm, first, 5)[0].verdict == "deny"  # approvals fail closed


# -- clicks -------------------------------------------------------------------------------------


class Backend:
    """A chat backend that records what the answers service does."""

    name = "slack"
    channels: Mapping[str, str] = {"#a": "C1"}
    on_action: Any = None

    def __init__(self) -> None:
        self.posts: list[Outgoing] = []
        self.updates: list[tuple[str, str, Sequence[Any] | None]] = []

    async def post(self, msg: Outgoing) -> Posted:
        self.posts.append(msg)
        return Posted(f"100.{len(self.posts)}")

    async def update(
        self, channel: str, ref: str, text: str, blocks: Sequence[Any] | None = None
    ) -> None:
        self.updates.append((ref, text, blocks))

    async def open_view(self, trigger_id: str, view: Mapping[str, Any]) -> None:
        return None

    async def find_posted(
        self, channel: str, event_ids: Sequence[str], thread: str | None = None
    ) -> dict[str, str]:
        return {
            e: f"100.{n}"
            for n, p in enumerate(self.posts, 1)
            for e in event_ids
            if p.event_id == e and p.thread == thread
        }


def test_a_question_posted_before_a_crash_is_found_not_posted_again(
    store: Store, tmp_path: Path
) -> None:
    """The runner dies after Slack took the question but before the message was recorded: the
    next runner finds it by its event id (in the thread it went to) and posts nothing; a click
    that comes first still rewrites that message."""
    config = parse_config(
        f"agents:\n- slug: a\n  workdir: {tmp_path}\n  channel: '#a'\n  allowed_users: [UALICE]\n",
        tmp_path / "agents.yaml",
    )
    backend = Backend()
    ask = question_ask("PreToolUse", QUESTION)
    assert ask is not None

    def crashed_runner() -> int:
        first = Answers(config, store, backend, ActivityTracker(), lambda slug: "50.1")  # type: ignore[arg-type]
        row, _ = first.book.open_or_create("a", ask)
        first.book.posted = lambda *a, **k: (_ for _ in ()).throw(OSError("killed"))  # type: ignore[method-assign]
        with pytest.raises(OSError):
            asyncio.run(first.posted_waiter(row))
        return row.id

    # a new runner, and a new turn thread by now: the look-up goes where the post went
    ask_id = crashed_runner()
    assert len(backend.posts) == 1

    async def hook_comes_back() -> str | None:
        second = Answers(config, store, backend, ActivityTracker(), lambda slug: "60.1")  # type: ignore[arg-type]
        row = second.book.get(ask_id)
        assert row is not None
        posted, _waiter = await second.posted_waiter(row)
        await second.close()
        return posted.message_ref

    assert asyncio.run(hook_comes_back()) == "100.1" and len(backend.posts) == 1

    # Again, but the click comes before the hook: the clicked message is the one rewritten.
    with store.tx() as db:
        db.execute("DELETE FROM asks")
    backend.posts.clear()
    ask_id = crashed_runner()
    ids = [b["accessory"]["action_id"] for b in backend.posts[0].blocks if "accessory" in b]

    async def click_first() -> None:
        second = Answers(config, store, backend, ActivityTracker(), lambda slug: "60.1")  # type: ignore[arg-type]
        assert await second.on_action(Action("UALICE", "C1", "100.1", ids[1], "blue")) is None
        await asyncio.sleep(0.05)
        await second.close()

    asyncio.run(click_first())
    ref, text, blocks = backend.updates[-1]
    assert ref == "100.1" and "<@UALICE>" in text and "button" not in json.dumps(blocks)
    assert len(backend.posts) == 1


def test_only_allowed_people_answer_and_the_hook_gets_it(store: Store, tmp_path: Path) -> None:
    config = parse_config(
        f"agents:\n- slug: a\n  workdir: {tmp_path}\n  channel: '#a'\n  allowed_users: [UALICE]\n",
        tmp_path / "agents.yaml",
    )
    tracker = ActivityTracker()
    backend = Backend()
    answers = Answers(config, store, backend, tracker, lambda slug: "50.1")  # type: ignore[arg-type]

    async def scenario() -> dict[str, Any]:
        tracker.hook("a", "UserPromptSubmit", {})
        hook = asyncio.ensure_future(answers.hook(HookMessage("a", "PreToolUse", QUESTION)))
        # the link is recorded once the post is (two store calls after it): wait for it
        while not backend.posts or tracker.get("a").waiting_link is None:
            await asyncio.sleep(0.01)
        assert tracker.get("a").state is Activity.WAITING_INPUT
        assert tracker.get("a").waiting_for == "question"
        assert (
            tracker.get("a").waiting_link
            == "https://slack.com/archives/C1/p1001?thread_ts=50.1&cid=C1"
        )
        tracker.hook("a", "PreToolUse", QUESTION)  # the relay hook of the same call, late
        assert tracker.get("a").state is Activity.WAITING_INPUT
        ids = [b["accessory"]["action_id"] for b in backend.posts[0].blocks if "accessory" in b]
        stranger = Action("UMALLORY", "C1", "100.1", ids[1], "blue")
        note = await answers.on_action(stranger)
        assert note and "allowed to steer" in note and not hook.done()
        assert await answers.on_action(Action("UALICE", "C1", "100.1", ids[1], "blue")) is None
        reply = await asyncio.wait_for(hook, 5)
        late = await answers.on_action(Action("UALICE", "C1", "100.1", ids[0], "red"))
        assert late and "answered already" in late
        await asyncio.sleep(0.05)
        return reply

    reply = asyncio.run(scenario())
    assert reply["output"]["hookSpecificOutput"]["updatedInput"]["answers"] == {
        "Which color?": "blue"
    }
    assert tracker.get("a").state is Activity.WORKING and tracker.get("a").waiting_for is None
    ref, text, blocks = backend.updates[-1]
    assert ref == "100.1" and "<@UALICE>" in text and "button" not in json.dumps(blocks)
    audit = status_of(store, "a")["answers"]
    assert [(a["user"], a["action"]) for a in audit] == [
        ("UALICE", "answered"),
        ("UMALLORY", "refused"),
    ]


def test_a_question_before_the_prompts_confirmation_still_goes_in_the_turns_thread(
    store: Store, tmp_path: Path
) -> None:
    """Claude's blocking question hook can reach the runner before the relay hook that confirms
    the prompt (and before the mirror has routed the turn): the pasted prompt's thread is the
    turn's from the moment it is pasted."""
    from bridge.store.queue import Kind, QueueItem

    config = parse_config(
        f"agents:\n- slug: a\n  workdir: {tmp_path}\n  channel: '#a'\n  allowed_users: [UALICE]\n",
        tmp_path / "agents.yaml",
    )
    tracker, backend = ActivityTracker(), Backend()
    answers = Answers(config, store, backend, tracker, lambda slug: None)  # type: ignore[arg-type]
    answers.activity("a", Activity.IDLE, Activity.WORKING)  # the paste started the turn
    source = {"via": "slack", "channel": "C1", "ts": "70.1", "thread_ts": "70.1"}
    answers.pasted(QueueItem(1, "a", Kind.STEER, "pick", source, "delivered", 1.0), "pasted")

    async def ask() -> None:
        hook = asyncio.ensure_future(answers.hook(HookMessage("a", "PreToolUse", QUESTION)))
        while not backend.posts:
            await asyncio.sleep(0.01)
        hook.cancel()
        await answers.close()

    asyncio.run(ask())
    assert backend.posts[0].thread == "70.1"
