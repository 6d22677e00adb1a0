"""Approvals never allow more than a person chose (issue 20, items 1-3), piece by piece.

The end-to-end proof against the real CLIs is ``tests/e2e/test_approvals_exact.py``; these pin
down each piece: the session rule Claude would read, a forged click, the hook client and the
runner failing closed, the pane fallback refusing Claude's own permission dialog, and the
per-request id that tells a re-sent hook from a new request.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bridge.answers.blocks import ask_blocks
from bridge.answers.book import AskBook
from bridge.answers.service import Answers
from bridge.chat.protocol import Action
from bridge.config.model import parse_config
from bridge.hooks import client
from bridge.hooks.server import HookMessage, HookServer, TokenBook
from bridge.lifecycle.activity import ActivityTracker
from bridge.store.db import Store
from runtimes import get_runtime
from runtimes.asks import Answer, ask_output
from runtimes.claude_screen import parse_picker
from tests.conftest import FIXTURES
from tests.unit.test_answers import APPROVAL, Backend


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "state.db")


def approval(command: str, **extra: Any) -> dict[str, Any]:
    return {**APPROVAL, "tool_input": {"command": command, "description": "run"}, **extra}


def button_ids(blocks: Any) -> list[str]:
    return [e["action_id"] for b in blocks for e in b.get("elements", ()) if "action_id" in e]


# -- item 1: a session rule allows exactly the command shown, or is not offered ---------------


@pytest.mark.parametrize(
    ("command", "rule"),
    [
        ("touch k.txt", True),
        ("touch note*.txt", False),  # a wildcard rule: would allow `touch note.txt pwned.txt`
        ("npm run:*", False),  # a prefix rule
        (r"touch note\*.txt", False),  # any star at all: Claude's escapes are not exact rules
        ("certified: touch x", False),  # a classifier's rule kind
        (" touch k.txt", False),  # Claude trims rules: not the command shown
    ],
)
def test_claude_session_rule_only_when_it_names_exactly_the_command(
    command: str, rule: bool
) -> None:
    ask = get_runtime("claude").parse_ask("PermissionRequest", approval(command))
    assert ask is not None
    ids = button_ids(ask_blocks("a", 1, ask))
    out = ask_output(ask, Answer("allow_session"))["hookSpecificOutput"]["decision"]
    if rule:
        assert ask.session_rule == {"toolName": "Bash", "ruleContent": command}
        assert "q:1:session" in ids
        assert out["updatedPermissions"][0]["rules"] == [ask.session_rule]
    else:
        assert ask.session_rule is None
        assert "q:1:session" not in ids and "q:1:allow" in ids
        assert out == {"behavior": "allow"}  # never a rule Claude would read more broadly


def test_no_session_rule_for_codex_or_for_tools_other_than_the_shell() -> None:
    codex = get_runtime("codex").parse_ask("PermissionRequest", approval("touch k.txt"))
    assert codex is not None and codex.session_rule is None
    write = {**APPROVAL, "tool_name": "Write", "tool_input": {"file_path": "/w/a", "content": "x"}}
    claude = get_runtime("claude").parse_ask("PermissionRequest", write)
    assert claude is not None and claude.session_rule is None


def config_for(tmp_path: Path, permissions: str = "ask") -> Any:
    text = (
        f"agents:\n- slug: a\n  workdir: {tmp_path}\n  channel: '#a'\n"
        f"  allowed_users: [UALICE]\n  permissions: {permissions}\n"
    )
    return parse_config(text, tmp_path / "agents.yaml")


def test_a_forged_session_click_is_refused_and_the_hook_gets_no_rule(
    store: Store, tmp_path: Path
) -> None:
    backend = Backend()
    answers = Answers(config_for(tmp_path), store, backend, ActivityTracker(), lambda s: None)  # type: ignore[arg-type]

    async def scenario() -> tuple[str | None, dict[str, Any]]:
        msg = HookMessage("a", "PermissionRequest", approval("touch note*.txt"), 0.0, "r1")
        hook = asyncio.ensure_future(answers.hook(msg))
        while not backend.posts:
            await asyncio.sleep(0.01)
        ask_id = button_ids(backend.posts[0].blocks)[0].split(":")[1]
        forged = Action("UALICE", "C1", "100.1", f"q:{ask_id}:session", "session")
        note = await answers.on_action(forged)
        assert not hook.done()
        await answers.on_action(Action("UALICE", "C1", "100.1", f"q:{ask_id}:allow", "allow"))
        reply = await asyncio.wait_for(hook, 5)
        await answers.close()
        return note, reply

    note, reply = asyncio.run(scenario())
    assert note and "cannot be allowed for the whole session" in note
    assert reply["output"]["hookSpecificOutput"]["decision"] == {"behavior": "allow"}


# -- item 2: every failure of the approval path denies; the pane never answers a dialog -------


@pytest.mark.parametrize("version", ["2.1.332", "2.1.337"])
def test_the_pane_fallback_never_reads_claudes_permission_dialog(version: str) -> None:
    """Captured from the real CLI (a hook that printed nothing), with a "✔" higher on screen
    (from the prompt): 18679b4 read it as a picker whose first option is "Yes". 2.1.337 draws
    the same dialog without the "Tip:" line."""
    screen = (FIXTURES / f"claude-{version}" / "pane-permission-dialog.txt").read_text()
    assert "Do you want to proceed?" in screen and "✔" in screen
    assert parse_picker(screen) is None
    picker = FIXTURES / "claude-2.1.328" / "ask-user-question" / "pane-picker.txt"
    real = parse_picker(picker.read_text())  # a real question picker is still read
    assert real is not None and real.question == "Which color for zz91?"


def run_client(event: str, stdin: str, env: dict[str, str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = client.main(event, io.StringIO(stdin), env)
    return code, out.getvalue()


def serve(tmp_path: Path, store: Store, blocking: Any, event: str, stdin: str) -> tuple[int, str]:
    """The real hook client against the real hook server with ``blocking`` as its handler."""
    sock = tmp_path / "hooks.sock"
    tokens = TokenBook(store)
    env = {
        "AGENTBRIDGE_HOOK_SOCKET": str(sock),
        "AGENTBRIDGE_SLUG": "a",
        "AGENTBRIDGE_HOOK_TOKEN": tokens.issue("a"),
    }
    result: list[tuple[int, str]] = []

    async def scenario() -> None:
        server = HookServer(sock, tokens, lambda m: None, blocking)
        await server.start()
        thread = threading.Thread(target=lambda: result.append(run_client(event, stdin, env)))
        thread.start()
        await asyncio.to_thread(thread.join, 30)
        await server.close()

    asyncio.run(scenario())
    return result[0]


def test_the_hook_client_denies_when_the_runner_fails(tmp_path: Path, store: Store) -> None:
    async def broken(msg: HookMessage) -> dict[str, Any]:
        raise RuntimeError("the runner broke")

    code, printed = serve(tmp_path, store, broken, "wait:PermissionRequest", json.dumps(APPROVAL))
    decision = json.loads(printed)["hookSpecificOutput"]["decision"]
    assert code == 0 and decision["behavior"] == "deny" and "broke" in decision["message"]
    # A question is not an approval: it is left to Claude's picker, which the pane fallback
    # reads and relays (it never reads the permission dialog).
    code, printed = serve(tmp_path, store, broken, "wait:PreToolUse", "{}")
    assert code == 0 and printed == ""


def test_a_database_error_or_an_oversize_payload_denies_and_the_channel_is_told(
    tmp_path: Path, store: Store
) -> None:
    backend = Backend()
    answers = Answers(config_for(tmp_path), store, backend, ActivityTracker(), lambda s: "50.1")  # type: ignore[arg-type]
    with store.tx() as db:
        db.execute("ALTER TABLE asks RENAME TO asks_away")

    async def hook(msg: HookMessage) -> dict[str, Any]:
        reply = await answers.hook(msg)
        await asyncio.sleep(0.05)  # the note is posted in the background
        return reply

    code, printed = serve(tmp_path, store, hook, "wait:PermissionRequest", json.dumps(APPROVAL))
    decision = json.loads(printed)["hookSpecificOutput"]["decision"]
    assert code == 0 and decision["behavior"] == "deny"
    assert "could not relay" in decision["message"]
    (note,) = backend.posts
    assert "could not be relayed" in note.text and "touch f" in note.text and note.thread == "50.1"

    with store.tx() as db:
        db.execute("ALTER TABLE asks_away RENAME TO asks")
    big = json.dumps(approval("echo " + "x" * (client.MAX_PAYLOAD + 10)))
    code, printed = serve(tmp_path, store, hook, "wait:PermissionRequest", big)
    decision = json.loads(printed)["hookSpecificOutput"]["decision"]
    assert code == 0 and decision["behavior"] == "deny"
    assert "too large" in backend.posts[-1].text
    asyncio.run(answers.close())


# -- item 3: "Allow once" is once; only the same hook request reuses an answer ----------------


def test_only_the_same_request_reuses_an_approvals_answer(store: Store) -> None:
    book = AskBook(store)
    runtime = get_runtime("claude")
    ask = runtime.parse_ask("PermissionRequest", approval("touch f"))
    assert ask is not None
    first = replace(ask, request_id="r1")
    row, created = book.open_or_create("a", first)
    assert created and book.answer(row.id, Answer("allow"), "UALICE", "allowed it once")
    book.delivered(row.id)
    resent, created = book.open_or_create("a", first)  # the hook lost the reply: same answer
    assert not created and resent.id == row.id and resent.answer == Answer("allow")
    new, created = book.open_or_create("a", replace(ask, request_id="r2"))  # asked again
    assert created and new.id != row.id and new.answer is None and new.ask.key == row.ask.key
    old_client, created = book.open_or_create("a", ask)  # no id: never a delivered answer
    assert created and old_client.id not in (row.id, new.id)


def test_the_hook_client_keeps_one_request_id_across_reconnects(
    tmp_path: Path, store: Store
) -> None:
    sock = tmp_path / "hooks.sock"
    tokens = TokenBook(store)
    env = {
        "AGENTBRIDGE_HOOK_SOCKET": str(sock),
        "AGENTBRIDGE_SLUG": "a",
        "AGENTBRIDGE_HOOK_TOKEN": tokens.issue("a"),
    }
    seen: list[HookMessage] = []
    result: list[tuple[int, str]] = []

    async def scenario() -> None:
        first_in = asyncio.Event()

        async def never(msg: HookMessage) -> dict[str, Any]:
            seen.append(msg)
            first_in.set()
            await asyncio.Event().wait()
            return {}

        async def answer(msg: HookMessage) -> dict[str, Any]:
            seen.append(msg)
            return {"output": {"ok": msg.request_id}}

        first = HookServer(sock, tokens, lambda m: None, never)
        await first.start()
        body = json.dumps(APPROVAL)
        thread = threading.Thread(
            target=lambda: result.append(run_client("wait:PermissionRequest", body, env))
        )
        thread.start()
        await asyncio.wait_for(first_in.wait(), 10)
        await first.close()  # a runner restart: the client re-sends
        second = HookServer(sock, TokenBook(store), lambda m: None, answer)
        await second.start()
        await asyncio.to_thread(thread.join, 30)
        await second.close()

    asyncio.run(scenario())
    ids = {m.request_id for m in seen}
    assert len(seen) == 2 and len(ids) == 1 and all(ids)
    assert json.loads(result[0][1]) == {"ok": seen[0].request_id}
    # and the next hook run is a new request
    again: list[HookMessage] = []

    async def record(msg: HookMessage) -> dict[str, Any]:
        again.append(msg)
        return {}

    serve(tmp_path, store, record, "wait:PermissionRequest", json.dumps(APPROVAL))
    assert again[0].request_id not in ids
