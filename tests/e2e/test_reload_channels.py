"""Issue 11 item 13 end to end: an agent added to agents.yaml while the runner runs gets its
channel resolved and joined, so steering it from that channel works within seconds."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Fleet, wait_until
from tests.integration.test_runner import wait_ready

pytestmark = pytest.mark.e2e


def bot_in(slack: Any, channel: str) -> bool:
    with slack.state.lock:
        return slack.state.bot_user_id in slack.state.channel(channel).members


def test_an_agent_added_by_a_reload_is_steerable_from_its_channel(fleet: Fleet, slack: Any) -> None:
    alice = slack.add_user("alice", "Alice")
    slack.add_channel("agent-first", members=[alice])
    later = slack.add_channel("agent-later", members=[alice], bot_member=False)
    fleet.agent("first", "claude", channel="#agent-first", allowed_users=[alice])
    fleet.use_slack(slack)
    fleet.write_config()
    fleet.start_runner()
    wait_until(lambda: "runner: started" in fleet.log_text(), 60, "runner")
    fleet.agent("later", "claude", channel="#agent-later", allowed_users=[alice])
    fleet.write_config()
    wait_ready(fleet, "later", "claude")
    wait_until(lambda: bot_in(slack, later), 60, "the bot joined the new agent's channel")
    ts = slack.post_as_user(alice, later, "hello to the new agent")
    wait_until(
        lambda: "hello to the new agent" in fleet.anthropic.prompts(), 90, "steering reached it"
    )
    wait_until(lambda: "eyes" in slack.reactions(later, ts), 30, "👀 on the message")
