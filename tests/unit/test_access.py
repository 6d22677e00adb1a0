"""Who may steer an agent, and what reaches it: inbound steering, ``/agent``, slash commands,
the closed-access note, and the ack-after-commit receipt. No CLI, no tmux, no network: a real
SQLite store and queue, and a recording stand-in for the chat backend."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.channel.access_note import AccessNotes
from bridge.channel.commands import Commands
from bridge.channel.inbound import Inbound
from bridge.chat.protocol import Incoming, Outgoing, Posted, Receipt
from bridge.config import access
from bridge.config.model import Config, parse_config
from bridge.doctor.access import check_access
from bridge.lifecycle.activity import ActivityTracker
from bridge.store.db import Store
from bridge.store.queue import PromptQueue

ALICE, BOB, MALLORY = "UALICE0001", "UBOB000001", "UMALLORY01"


class Backend:
    """Records what the inbound side says; channels are ids already."""

    name = "slack"
    coalesce = False
    live_status = False

    def __init__(self) -> None:
        self.channels: dict[str, str] = {"#one": "C0000000001", "#two": "C0000000002"}
        self.notified: list[tuple[str, str, str]] = []
        self.posts: list[Outgoing] = []
        self.reactions: list[tuple[str, str, str]] = []

    async def notify_user(self, channel: str, user: str, text: str) -> None:
        self.notified.append((channel, user, text))

    async def post(self, msg: Outgoing) -> Posted:
        self.posts.append(msg)
        return Posted(str(len(self.posts)))

    async def react(self, channel: str, ref: str, emoji: str) -> None:
        self.reactions.append((channel, ref, emoji))


def make_config(tmp_path: Path, **top: Any) -> Config:
    agents = top.pop("agents", None) or [
        {"slug": "one", "channel": "#one"},
        {"slug": "two", "channel": "#two"},
    ]
    for agent in agents:
        agent.setdefault("workdir", str(tmp_path))
    return parse_config(yaml.safe_dump({"agents": agents, **top}), tmp_path / "agents.yaml")


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store(tmp_path / "state.db")
    yield s
    s.close()


def inbound(config: Config, store: Store, backend: Backend, tmp_path: Path) -> Inbound:
    return Inbound(
        config,
        PromptQueue(store),
        backend,  # type: ignore[arg-type]
        tmp_path / "inbox",
        channel_ids=lambda: dict(backend.channels),
    )


def msg(user: str, text: str, channel: str = "C0000000001", ref: str = "1.000100", **kw: Any):
    return Incoming(channel=channel, user=user, text=text, ref=ref, **kw)


def queued(store: Store) -> list[tuple[str, str]]:
    return [(i.slug, i.text) for i in PromptQueue(store).queued()]


# -- steering: fail closed --------------------------------------------------------------


def test_no_allowlist_anywhere_means_nobody_steers(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path)
    backend = Backend()
    item = asyncio.run(inbound(config, store, backend, tmp_path).handle(msg(ALICE, "rm -rf /")))
    assert item is None and queued(store) == []
    [(_, user, text)] = backend.notified
    assert user == ALICE and "allowed_users" in text and "access: channel-members" in text


def test_allowlists_agent_and_fleet_level(tmp_path: Path, store: Store) -> None:
    config = make_config(
        tmp_path,
        allowed_users=[BOB],
        agents=[{"slug": "one", "channel": "#one", "allowed_users": [ALICE]}],
    )
    backend = Backend()
    ib = inbound(config, store, backend, tmp_path)
    assert asyncio.run(ib.handle(msg(ALICE, "from alice", ref="1.1")))
    assert asyncio.run(ib.handle(msg(BOB, "from bob", ref="1.2")))
    assert asyncio.run(ib.handle(msg(MALLORY, "from mallory", ref="1.3"))) is None
    assert queued(store) == [("one", "from alice"), ("one", "from bob")]
    [(_, user, text)] = backend.notified
    assert user == MALLORY and "not in its `allowed_users`" in text


def test_channel_members_opt_in_restores_open_steering(tmp_path: Path, store: Store) -> None:
    config = make_config(
        tmp_path,
        agents=[
            {"slug": "one", "channel": "#one", "access": "channel-members"},
            {"slug": "two", "channel": "#two"},
        ],
    )
    ib = inbound(config, store, Backend(), tmp_path)
    assert asyncio.run(ib.handle(msg(MALLORY, "open here", ref="1.1")))
    assert asyncio.run(ib.handle(msg(MALLORY, "closed here", "C0000000002", "1.2"))) is None
    assert queued(store) == [("one", "open here")]
    # A fleet-level opt-in, and an allowlist that still restricts under it.
    config = make_config(
        tmp_path,
        access="channel-members",
        agents=[{"slug": "one", "channel": "#one", "allowed_users": [ALICE]}],
    )
    here = access.Where.CHANNEL
    assert access.authorize(config, config.agents[0], ALICE, access.Act.STEER, here)
    assert not access.authorize(config, config.agents[0], MALLORY, access.Act.STEER, here)


def test_bots_are_ignored_unless_allowed_and_then_still_need_the_list(
    tmp_path: Path, store: Store
) -> None:
    config = make_config(
        tmp_path,
        agents=[
            {"slug": "one", "channel": "#one", "allowed_users": [ALICE]},
            {"slug": "two", "channel": "#two", "allowed_users": [ALICE], "allow_bots": True},
        ],
    )
    backend = Backend()
    ib = inbound(config, store, backend, tmp_path)
    assert asyncio.run(ib.handle(msg(ALICE, "bot1", is_bot=True, ref="1.1"))) is None
    assert (
        asyncio.run(ib.handle(msg("UBOTOTHER1", "bot2", "C0000000002", "1.2", is_bot=True))) is None
    )
    assert asyncio.run(ib.handle(msg(ALICE, "bot3", "C0000000002", "1.3", is_bot=True)))
    assert queued(store) == [("two", "bot3")]
    assert [n[1] for n in backend.notified] == ["UBOTOTHER1"]


# -- slash commands ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "passes"),
    [
        ("/compact", True),
        ("  /compact focus on the parser", True),
        ("/model opus", False),
        ("/logout", False),
        ("/clear", False),
        ("/tmp/x.log is broken", False),
        ("please run /clear", True),
        ("/review", True),  # on this agent's own list
    ],
)
def test_only_listed_cli_commands_pass(
    tmp_path: Path, store: Store, text: str, passes: bool
) -> None:
    config = make_config(
        tmp_path,
        agents=[
            {
                "slug": "one",
                "channel": "#one",
                "allowed_users": [ALICE],
                "slash_commands": ["/compact", "/review"],
            }
        ],
    )
    backend = Backend()
    item = asyncio.run(inbound(config, store, backend, tmp_path).handle(msg(ALICE, text)))
    assert (item is not None) == passes
    assert len(queued(store)) == (1 if passes else 0)
    if not passes:
        [note] = backend.posts
        assert "`slash_commands`" in note.text and text.split()[0] in note.text
        assert ("C0000000001", "1.000100", "warning") in backend.reactions


def test_default_slash_commands_is_compact_only(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    assert config.agents[0].slash_commands == ["/compact"]
    with pytest.raises(Exception, match="must be a CLI command"):
        make_config(tmp_path, agents=[{"slug": "one", "slash_commands": ["compact"]}])


# -- redelivery, receipts ---------------------------------------------------------------


def test_redelivery_is_queued_once_even_by_a_fresh_runner(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path, allowed_users=[ALICE])
    first = msg(ALICE, "once", event_id="Ev1")
    assert asyncio.run(inbound(config, store, Backend(), tmp_path).handle(first))
    again = msg(ALICE, "once", event_id="Ev1")  # a new runner: nothing in memory
    assert asyncio.run(inbound(config, store, Backend(), tmp_path).handle(again)) is None
    assert queued(store) == [("one", "once")]


def test_receipt_is_kept_only_after_the_row_is_committed(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path, allowed_users=[ALICE])

    class BrokenQueue(PromptQueue):
        def enqueue(self, *args: Any, **kwargs: Any) -> int | None:
            raise OSError("disk full")

    async def run() -> tuple[bool, bool, bool]:
        ok, ignored, broken = Receipt(), Receipt(), Receipt()
        ib = inbound(config, store, Backend(), tmp_path)
        await ib.handle(msg(ALICE, "kept", receipt=ok))
        await ib.handle(msg(ALICE, "no agent here", "C0000000009", "2.0", receipt=ignored))
        ib.queue = BrokenQueue(store)
        with pytest.raises(OSError):
            await ib.handle(msg(ALICE, "lost?", ref="3.0", receipt=broken))
        return ok.settled, ignored.settled, broken.settled

    assert asyncio.run(run()) == (True, True, False)


# -- /agent -------------------------------------------------------------------------------


class Reconciler:
    def restart(self, slug: str) -> str:
        return f"restarted {slug}"

    def stop(self, slug: str) -> str:
        return f"stopped {slug}"


def commands(config: Config, store: Store, backend: Backend) -> Commands:
    return Commands(
        config,
        PromptQueue(store),
        ActivityTracker(),
        Reconciler(),  # type: ignore[arg-type]
        channel_ids=lambda: dict(backend.channels),
    )


def test_agent_command_judges_the_target_agent_from_anywhere(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    # "one" has a list, "two" has none: /agent send two from any channel or DM reaches nobody.
    config = make_config(
        tmp_path,
        agents=[
            {"slug": "one", "channel": "#one", "allowed_users": [ALICE]},
            {"slug": "two", "channel": "#two"},
        ],
    )
    cmd = commands(config, store, Backend())
    caplog.set_level(logging.WARNING, "agentbridge.chat")
    for who, where in ((MALLORY, "C0000000001"), (ALICE, "D0000000001"), (ALICE, "C0000000002")):
        reply = asyncio.run(cmd.run(who, where, "send two hello"))
        assert "Nobody may control `two`" in reply and "allowed_users" in reply
    reply = asyncio.run(cmd.run(MALLORY, "D0000000001", "restart one"))
    assert "not allowed to control `one`" in reply
    assert queued(store) == []
    assert sum("refused /agent" in r.getMessage() for r in caplog.records) == 4
    assert asyncio.run(cmd.run(ALICE, "D0000000001", "send one hi")) == "Queued for `one`."
    assert asyncio.run(cmd.run(ALICE, "C0000000002", "restart one")) == "restarted one"
    assert queued(store) == [("one", "hi")]
    assert "`one`" in cmd.status(ALICE) and "`two`" not in cmd.status(ALICE)


def test_agent_command_channel_members_only_from_the_agents_channel(
    tmp_path: Path, store: Store
) -> None:
    config = make_config(
        tmp_path, agents=[{"slug": "one", "channel": "#one", "access": "channel-members"}]
    )
    cmd = commands(config, store, Backend())
    assert "only from its own channel" in asyncio.run(cmd.run(MALLORY, "D0000000001", "send one x"))
    assert asyncio.run(cmd.run(MALLORY, "C0000000001", "send one x")) == "Queued for `one`."


def test_agent_send_obeys_slash_commands(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path, allowed_users=[ALICE])
    cmd = commands(config, store, Backend())
    reply = asyncio.run(cmd.run(ALICE, "C0000000001", "send one /logout"))
    assert "`/logout`" in reply and "slash_commands" in reply
    assert asyncio.run(cmd.run(ALICE, "C0000000001", "send one /compact")) == "Queued for `one`."
    assert queued(store) == [("one", "/compact")]


# -- the closed-access note, doctor, status ---------------------------------------------


def test_closed_note_is_posted_once_across_restarts_and_again_after_reopening(
    tmp_path: Path, store: Store
) -> None:
    closed = make_config(tmp_path, agents=[{"slug": "one", "channel": "#one"}])
    opened = make_config(
        tmp_path, agents=[{"slug": "one", "channel": "#one", "allowed_users": [ALICE]}]
    )
    backend = Backend()
    asyncio.run(AccessNotes(store, backend).announce(closed, at_start=True))  # type: ignore[arg-type]
    asyncio.run(AccessNotes(store, backend).announce(closed, at_start=True))  # type: ignore[arg-type]
    assert len(backend.posts) == 1
    [note] = backend.posts
    assert (
        note.channel == "#one" and "allowed_users" in note.text and "channel-members" in note.text
    )
    asyncio.run(AccessNotes(store, backend).announce(opened))  # type: ignore[arg-type]
    asyncio.run(AccessNotes(store, backend).announce(closed))  # type: ignore[arg-type]
    assert len(backend.posts) == 2
    console = Backend()
    console.name = "console"
    asyncio.run(AccessNotes(Store(tmp_path / "other.db"), console).announce(closed))  # type: ignore[arg-type]
    assert console.posts == []


def test_doctor_and_status_show_each_agents_access_mode(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        agents=[
            {"slug": "one", "allowed_users": [ALICE, BOB]},
            {"slug": "two", "access": "channel-members"},
            {"slug": "three"},
        ],
    )
    slack_env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}
    checks = {c.agent: c.detail for c in check_access(config, slack_env)}
    assert checks["one"].startswith("allowlist: 2 Slack users")
    assert checks["two"].startswith("channel-members")
    assert checks["three"].startswith("closed") and "allowed_users" in checks["three"]
    assert [access.kind(config, a, slack=True) for a in config.agents] == [
        "allowlist",
        "channel-members",
        "closed",
    ]
    assert {c.detail.split(":")[0] for c in check_access(config, {})} == {"local"}
