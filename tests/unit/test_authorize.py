"""One authorization decision for every action (issue 20 item 5): the table, and its call sites.

:func:`bridge.config.access.authorize` is tested as a table (action x access setup x who x
where), the expected answers written out here rather than derived from ``RULES``; then the
``/agent review`` case that used to judge a DM as the template's channel, through the real
``/agent`` command path; then a grep that nothing else in ``bridge/`` judges access by itself.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.channel.commands import Commands
from bridge.chat.protocol import Outgoing, Posted
from bridge.config import access
from bridge.config.access import RULES, Act, Where
from bridge.config.model import Config, parse_config
from bridge.mirror.routing import TurnRouter
from bridge.review.service import ReviewService
from bridge.store.db import Store
from tests.review_support import PrRemote
from tests.unit.test_layering import REPO

ALICE, MALLORY = "UALICE0001", "UMALLORY01"

SETUPS: dict[str, dict[str, Any]] = {
    "closed": {"agent": {}},
    "agent-list": {"agent": {"allowed_users": [ALICE]}},
    "fleet-list": {"agent": {}, "top": {"allowed_users": [ALICE]}},
    "list+members": {"agent": {"allowed_users": [ALICE], "access": "channel-members"}},
    "members": {"agent": {"access": "channel-members"}},
    "fleet-members": {"agent": {}, "top": {"access": "channel-members"}},
    "members-overridden": {"agent": {"access": "allowlist"}, "top": {"access": "channel-members"}},
}

ONLY_IN_CHANNEL_EVEN_LISTED = {Act.STEER, Act.ALERT}
"""Actions whose request only ever comes from the agent's channel (a message there, a button
on a message there), so even an allowlisted person's request from elsewhere is refused."""


def expected(setup: str, user: str, act: Act, where: Where) -> bool:
    if setup in ("closed", "members-overridden"):
        return False  # fail closed: no list, no opt-in
    if setup in ("members", "fleet-members"):
        return where is Where.CHANNEL  # anyone, but only a request there proves membership
    # An allowlist: it alone decides, in either mode.
    return user == ALICE and (where is Where.CHANNEL or act not in ONLY_IN_CHANNEL_EVEN_LISTED)


def config_for(tmp_path: Path, setup: str) -> Config:
    spec = SETUPS[setup]
    agent = {"slug": "web", "channel": "#web", "workdir": str(tmp_path), **spec["agent"]}
    text = yaml.safe_dump({"agents": [agent], **spec.get("top", {})})
    return parse_config(text, tmp_path / "agents.yaml")


@pytest.mark.parametrize("setup", sorted(SETUPS))
@pytest.mark.parametrize("act", list(Act))
def test_the_access_table(tmp_path: Path, setup: str, act: Act) -> None:
    config = config_for(tmp_path, setup)
    agent = config.agents[0]
    for user in (ALICE, MALLORY):
        for where in Where:
            decision = access.authorize(config, agent, user, act, where)
            want = expected(setup, user, act, where)
            assert decision.allowed is want, (setup, act, user, where, decision)
            assert bool(decision) is want and decision.reason
            if not want and setup in ("closed", "members-overridden"):
                assert "allowed_users" in decision.reason  # the refusal names the key to set


def test_every_action_has_a_rule_and_members_never_reach_beyond_the_channel() -> None:
    assert set(RULES) == set(Act)
    assert all(rule.members <= {Where.CHANNEL} for rule in RULES.values())


def test_where_a_request_comes_from() -> None:
    own = ("#web", "C0WEB")
    assert access.place("C0WEB", own) is Where.CHANNEL
    assert access.place("#web", own) is Where.CHANNEL
    assert access.place("D0123", own) is Where.DM
    assert access.place("", own) is Where.DM
    assert access.place("C0OTHER", own) is Where.OTHER


class Recorder:
    name = "recorder"
    coalesce = False
    live_status = False
    command_handler = None

    def __init__(self) -> None:
        self.channels: dict[str, str] = {"#web": "C0WEB"}
        self.posts: list[Outgoing] = []

    async def resolve_channels(self, wanted: Sequence[str]) -> list[str]:
        return []

    async def post(self, msg: Outgoing) -> Posted:
        self.posts.append(msg)
        return Posted(f"{len(self.posts)}.0")


def test_agent_review_from_a_dm_is_judged_as_a_dm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under ``access: channel-members`` a non-member's ``/agent review`` from a DM spawned a
    bypass-permissions reviewer (judged as if in the template's channel) while ``/agent
    restart`` from the same DM was refused. Now both are refused there, and allowed from the
    template's own channel."""
    template = {
        "slug": "web",
        "channel": "#web",
        "workdir": str(tmp_path),
        "access": "channel-members",
        "review": {"repo": str(PrRemote(tmp_path).repo), "worktrees": str(tmp_path / "reviews")},
    }
    config_path = tmp_path / "agents.yaml"
    config_path.write_text(yaml.safe_dump({"agents": [template]}))
    config = parse_config(config_path.read_text(), config_path)
    looked_up: list[str] = []

    async def request(ref: str, *_a: Any, **_k: Any) -> str:
        looked_up.append(ref)
        return f"Starting a review of {ref}"

    async def scenario() -> list[str]:
        store = Store(tmp_path / "state.db")
        svc = ReviewService(
            config, config_path, tmp_path, store, Recorder(), TurnRouter(), lambda _: None
        )  # type: ignore[arg-type]
        monkeypatch.setattr(svc, "request", request)
        commands = Commands(config, None, None, None)  # type: ignore[arg-type]
        commands.verbs["review"] = svc.command
        replies = [
            await commands.run(MALLORY, "D0MALLORY", "review 42"),
            await commands.run(MALLORY, "D0MALLORY", "restart web"),
            await commands.run(MALLORY, "C0WEB", "review 43"),
        ]
        store.close()
        return replies

    from_dm, restart_dm, from_channel = asyncio.run(scenario())
    assert "only from its own channel" in from_dm and "no review was started" in from_dm
    assert "only from its own channel" in restart_dm
    assert from_channel == "Starting a review of 43"
    assert looked_up == ["43"]


DECISION_INGREDIENTS = re.compile(
    r"\bmay_steer\b|\.allowed_users\b|\baccess\.(?:allowlist|mode)\(|\bin_channel\s*="
)


def test_nothing_but_authorize_judges_access() -> None:
    """Call sites ask :func:`authorize`; none reads the allowlists or the mode itself (a second,
    drifting copy of the rule is how ``/agent review`` came to judge a DM as a channel)."""
    offenders = []
    for path in sorted((REPO / "bridge").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith(("bridge/config/", "bridge/devtools/")):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if DECISION_INGREDIENTS.search(line):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, offenders
