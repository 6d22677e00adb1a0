"""The one outbound chokepoint (bridge/chat/redacting.py): every way text leaves for the chat is
redacted there, and nothing in the runner can reach a backend that is not behind it.

Three layers of proof: each member of the ChatBackend protocol is classified (a new one fails
here until someone decides whether it carries text out) and each text-carrying one is shown to
redact, Block Kit trees included; the factory always returns the wrapper; and the import graph
and the source hold the rest of the code to it (only the factory constructs a raw backend,
nothing outside ``bridge/chat/slack`` calls Slack's posting methods).
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from bridge.chat.factory import make_backend
from bridge.chat.protocol import Action, Attachment, ChatBackend, Incoming, Outgoing, Posted
from bridge.chat.redacting import ID_KEYS, THREAD_ABOVE, RedactingBackend, redact_tree
from tests.unit.test_layering import GRAPH, REPO

ANT = "sk-ant-api03-" + "Q" * 40
GH = "ghp_" + "a1B2c3D4e5" * 4
BEARER = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLWhlcmU"
SECRETS = (ANT, GH, BEARER, "hunter2-Pa55word")
LEAKY = (
    f'curl -H "Authorization: Bearer {BEARER}" https://api.example.com -d key={ANT} '
    f"GITHUB_TOKEN={GH} DB_PASSWORD=hunter2-Pa55word"
)

OUTBOUND = frozenset({"post", "update", "open_view", "notify_user", "command_handler", "on_action"})
"""Protocol members that carry text to people (or to the chat service on their behalf)."""
NO_TEXT = frozenset(
    {
        "name",
        "coalesce",
        "live_status",
        "channels",
        "start",
        "close",
        "figures",
        "resolve_channels",
        "reserve",
        "delete",
        "react",
        "find_posted",
        "attachment",
        "receive",
    }
)
"""Members with no text for people: ids, emoji names of ours, inbound data, lifecycle."""


def protocol_members() -> set[str]:
    names = set(vars(ChatBackend)) | set(ChatBackend.__annotations__)
    return {n for n in names if not n.startswith("_")}


def leaks(value: Any) -> list[str]:
    dumped = value if isinstance(value, str) else json.dumps(value, default=str)
    return [s for s in SECRETS if s in dumped]


class Recorder:
    """A raw backend that records what reaches it."""

    name = "recorder"
    coalesce = False
    live_status = False

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.command_handler: Any = None
        self.on_action: Any = None

    @property
    def channels(self) -> Mapping[str, str]:
        return {}

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def resolve_channels(self, wanted: Sequence[str]) -> list[str]:
        return []

    async def post(self, msg: Outgoing) -> Posted:
        self.calls.append(("post", msg))
        return Posted("1")

    async def update(
        self, channel: str, ref: str, text: str, blocks: Sequence[Mapping[str, Any]] | None = None
    ) -> None:
        self.calls.append(("update", (channel, ref, text, blocks)))

    async def open_view(self, trigger_id: str, view: Mapping[str, Any]) -> None:
        self.calls.append(("open_view", (trigger_id, view)))

    async def reserve(self, channel: str) -> float:
        return 0.0

    async def delete(self, channel: str, ref: str) -> bool:
        return True

    async def react(self, channel: str, ref: str, emoji: str) -> None:
        self.calls.append(("react", emoji))

    async def notify_user(self, channel: str, user: str, text: str) -> None:
        self.calls.append(("notify_user", (channel, user, text)))

    async def find_posted(
        self, channel: str, event_ids: Sequence[str], thread: str | None = None
    ) -> dict[str, str]:
        return {}

    def attachment(self, file_id: str, name: str, size: int, source: str) -> Attachment:
        async def fetch(limit: int) -> bytes:
            return b""

        return Attachment(file_id, name, size, fetch, source)

    async def receive(self) -> AsyncIterator[Incoming]:
        return
        yield


def leaky_blocks() -> tuple[dict[str, Any], ...]:
    return (
        {"type": "section", "text": {"type": "mrkdwn", "text": f"wants to run ```{LEAKY}```"}},
        {
            "type": "actions",
            "block_id": "q-1",
            "elements": [
                {
                    "type": "button",
                    "action_id": "q:1:opt:0:0",
                    "text": {"type": "plain_text", "text": f"Use {GH}"},
                    "value": f"token={GH}",
                    "url": f"https://user:hunter2-Pa55word@example.com/{ANT}",
                    "style": "primary",
                },
                {
                    "type": "checkboxes",
                    "action_id": "q:1:chk:0",
                    "options": [
                        {
                            "text": {"type": "plain_text", "text": ANT},
                            "description": {"type": "plain_text", "text": BEARER},
                            "value": "0",
                        }
                    ],
                },
            ],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": LEAKY}]},
    )


def leaky_view() -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "q:1:denyform:0",
        "private_metadata": f"1 {GH}",
        "title": {"type": "plain_text", "text": "Deny"},
        "blocks": [
            {
                "type": "input",
                "block_id": "answer",
                "label": {"type": "plain_text", "text": LEAKY},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "text",
                    "initial_value": f"password={'hunter2-Pa55word'}",
                    "placeholder": {"type": "plain_text", "text": ANT},
                },
            }
        ],
    }


def test_every_protocol_member_is_classified() -> None:
    """A new member of ChatBackend fails here until it is put on one side: if it carries text
    out, RedactingBackend must redact it (and a case below must prove it)."""
    assert protocol_members() == OUTBOUND | NO_TEXT
    assert not OUTBOUND & NO_TEXT


def run_outbound(member: str, inner: Recorder, outer: RedactingBackend) -> list[Any]:
    """Send leaky text out through ``member`` of ``outer``; what reached the raw backend (or,
    for the handlers, what the raw backend would send: the handler's reply)."""

    async def scenario() -> list[Any]:
        if member == "post":
            await outer.post(
                Outgoing(
                    "web",
                    "#c",
                    LEAKY,
                    "ev1",
                    thread="1.0",
                    blocks=leaky_blocks(),
                    filename=f"{GH}.env",
                )
            )
            await outer.post(  # a file upload: content and name
                Outgoing("web", "#c", LEAKY * 400, "ev2", as_file=True, filename=f"dump-{ANT}.txt")
            )
        elif member == "update":
            await outer.update("#c", "1.0", LEAKY, leaky_blocks())
            await outer.update("#c", "1.0", LEAKY * 400, None)
        elif member == "open_view":
            await outer.open_view("trig", leaky_view())
        elif member == "notify_user":
            await outer.notify_user("#c", "U1", LEAKY)
        elif member == "command_handler":

            async def reply(user: str, channel: str, text: str) -> str:
                return f"ran {text}: {LEAKY}"

            outer.command_handler = reply
            assert outer.command_handler is reply
            return [await inner.command_handler("U1", "C1", f"send web {GH}")]
        elif member == "on_action":

            async def note(action: Action) -> str | None:
                return f"{action.value}: {LEAKY}"

            outer.on_action = note
            assert outer.on_action is note
            return [await inner.on_action(Action("U1", "C1", "1.0", "x", value=ANT))]
        return [payload for _, payload in inner.calls]

    return asyncio.run(scenario())


@pytest.mark.parametrize("member", sorted(OUTBOUND))
def test_each_outbound_member_redacts(member: str) -> None:
    inner = Recorder()
    outer = RedactingBackend(inner)
    sent = run_outbound(member, inner, outer)
    assert sent, f"{member} sent nothing"
    for payload in sent:
        assert not leaks(payload), f"{member} leaked {leaks(payload)}: {payload!r}"[:400]
        assert "[REDACTED" in json.dumps(payload, default=str)


def test_a_post_keeps_its_ids_and_an_upload_its_shape() -> None:
    inner = Recorder()
    outer = RedactingBackend(inner)
    run_outbound("post", inner, outer)
    first, upload = (msg for _, msg in inner.calls)
    assert (first.slug, first.channel, first.event_id, first.thread) == ("web", "#c", "ev1", "1.0")
    assert upload.as_file and upload.filename.startswith("dump-[REDACTED")
    assert upload.text.count("[REDACTED") >= 400  # redacted off the loop: still whole
    assert len(LEAKY * 400) > THREAD_ABOVE


def test_block_ids_survive_and_every_other_string_is_redacted() -> None:
    """Ids the channel side routes clicks by are kept (they are ours, never agent text);
    every other string, shown or not (button values, URLs, metadata), is redacted."""
    tree = redact_tree({"blocks": list(leaky_blocks()), "view": leaky_view()})
    button = tree["blocks"][1]["elements"][0]
    assert button["action_id"] == "q:1:opt:0:0" and tree["blocks"][1]["block_id"] == "q-1"
    assert button["style"] == "primary" and button["type"] == "button"
    assert tree["view"]["callback_id"] == "q:1:denyform:0"
    assert tree["view"]["private_metadata"].startswith("1 [REDACTED")
    assert button["value"] == "token=[REDACTED:github-token]"
    assert tree["blocks"][1]["elements"][1]["options"][0]["value"] == "0"
    assert not leaks(tree)
    assert {"type", "action_id", "block_id", "callback_id"} <= ID_KEYS


def test_pass_through_members_change_nothing() -> None:
    inner = Recorder()
    outer = RedactingBackend(inner)

    async def scenario() -> None:
        await outer.react("#c", "1.0", "white_check_mark")
        assert await outer.delete("#c", "1.0")
        assert await outer.reserve("#c") == 0.0

    asyncio.run(scenario())
    assert inner.calls == [("react", "white_check_mark")]
    assert (outer.name, outer.coalesce, outer.live_status) == ("recorder", False, False)


@pytest.mark.parametrize(
    "env",
    [{}, {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}, {"SLACK_BOT_TOKEN": "x"}],
)
def test_the_factory_only_ever_hands_out_the_wrapped_backend(
    tmp_path: Path, env: dict[str, str]
) -> None:
    backend = make_backend(tmp_path, env)
    assert type(backend) is RedactingBackend


RAW = ("bridge.chat.console", "bridge.chat.slack.backend", "bridge.chat.slack.posting")


def test_only_the_factory_constructs_a_raw_backend() -> None:
    """The import graph: nothing but the factory (and the Slack package's own modules) imports a
    raw backend's module, so nothing can build one and post around the chokepoint."""
    importers = {
        name
        for name, imported in GRAPH.items()
        if any(m == raw or m.startswith(raw + ".") for m in imported for raw in RAW)
    }
    allowed = {"bridge.chat.factory"} | {n for n in importers if n.startswith("bridge.chat.slack")}
    assert importers <= allowed, importers - allowed


SLACK_OUT = re.compile(
    r"\b(chat_postMessage|chat_update|chat_postEphemeral|chat_scheduleMessage|files_upload\w*"
    r"|views_(?:open|update|push|publish)|chat\.postMessage|chat\.update|chat\.postEphemeral"
    r"|files\.upload\w*|views\.(?:open|update|push|publish)|response_url)\b"
)


def test_nothing_outside_the_slack_backend_calls_slack_posting_methods() -> None:
    """Doctor and the demo talk to Slack too (reads only); a post from anywhere but the raw
    Slack backend (which only the chokepoint reaches) would skip the redaction."""
    offenders = []
    for path in sorted((REPO / "bridge").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith(("bridge/chat/slack/", "bridge/devtools/")):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute | ast.Name | ast.Constant):
                text = getattr(node, "attr", None) or getattr(node, "id", None)
                if text is None and isinstance(getattr(node, "value", None), str):
                    continue  # string constants are docs, not calls
                if isinstance(text, str) and SLACK_OUT.fullmatch(text):
                    offenders.append(f"{rel}:{node.lineno} {text}")
    assert not offenders, offenders


def test_the_app_gets_its_backend_from_the_factory_only() -> None:
    """The app wiring: outside ``bridge/chat`` no code constructs a backend except wrappers of
    one it was given (the multi-host router, a DelegatingBackend), and the daemon's comes from
    make_backend, so whatever the runner hands out has the chokepoint innermost."""
    from bridge.chat.delegate import DelegatingBackend
    from bridge.cluster.router import RoutedBackend

    wrappers = {"RoutedBackend"}
    assert issubclass(RoutedBackend, DelegatingBackend)
    built = []
    for path in sorted((REPO / "bridge").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith(("bridge/chat/", "bridge/devtools/")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if isinstance(name, str) and name.endswith("Backend") and name not in wrappers:
                    built.append(f"{rel}:{node.lineno} {name}")
    assert not built, built
    daemon = (REPO / "bridge/app/daemon.py").read_text(encoding="utf-8")
    assert "make_backend(" in daemon
