"""End to end through the Slack emulator and the real SlackBackend: a usage limit's one post,
``/agent status`` while limited, a schedule firing during the limit, and a stuck turn's alert
whose Interrupt button (refused to a stranger) unsticks it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import Fleet, wait_until
from tests.e2e.test_slack import bot_texts, setup_agent
from tests.integration.test_runner import wait_ready

pytestmark = pytest.mark.e2e


def test_codex_limit_one_post_status_and_a_schedule_held_until_after(
    fleet: Fleet, slack: Any
) -> None:
    slug = "lim-slack"
    alice, channel, _ = setup_agent(
        fleet, slack, slug, "codex", watchdog={"limit_grace_seconds": 1}
    )
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, slug, "codex")
    slack.post_as_user(alice, channel, "work until the limit LIMIT:75")
    wait_until(
        lambda: [t for t in bot_texts(slack, channel) if "Usage limit reached" in t],
        90,
        "the limit post",
    )
    assert fleet.status()[slug]["activity"] == "limited"
    slack.slash_command(alice, channel, "/agent", "status")
    wait_until(
        lambda: any("limited until" in str(r) for r in slack.responses()), 30, "/agent status"
    )
    # A schedule that fires during the limit: the next minute boundary is < 60 s away and the
    # limit (75 s from its first request) outlasts it.
    fire = time.gmtime((int(time.time()) // 60 + 1) * 60)
    spec = fleet.agents_by_slug(slug)
    spec["schedules"] = [{"cron": f"{fire.tm_min} {fire.tm_hour} * * *", "prompt": "morning run"}]
    fleet.write_config()
    wait_until(lambda: "scheduled prompt queued" in fleet.log_text(), 90, "the schedule fires")
    assert fleet.status()[slug]["activity"] == "limited"  # held, not pasted
    wait_until(lambda: "morning run" in fleet.openai.prompts(), 150, "the schedule after it")
    prompts = fleet.openai.prompts()
    assert prompts.count("morning run") == 1
    assert prompts.index("continue") < prompts.index("morning run")
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 90, "idle")
    assert len([t for t in bot_texts(slack, channel) if "Usage limit reached" in t]) == 1
    assert not [t for t in bot_texts(slack, channel) if "Still limited" in t]


def test_stuck_alert_buttons_obey_steering_rules_and_interrupt_unsticks(
    fleet: Fleet, slack: Any
) -> None:
    slug = "stuck-slack"
    alice, channel, _ = setup_agent(
        fleet, slack, slug, "codex", watchdog={"stuck_after_minutes": 0.15}
    )
    mallory = slack.add_user("mallory", "Mallory")
    slack.join(mallory, channel)
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, slug, "codex")
    ts = slack.post_as_user(alice, channel, "hang STALL:600")

    def alerts() -> list[dict[str, Any]]:
        return [m for m in slack.messages(channel) if "looks stuck" in str(m.get("text", ""))]

    wait_until(alerts, 120, "the stuck alert")
    alert = alerts()[0]
    assert alert.get("thread_ts") == ts  # in the turn's thread
    assert "```" in alert["text"] and alert.get("blocks")
    (value,) = {e["value"] for b in alert["blocks"] for e in b.get("elements", ())}
    slack.click(mallory, channel, alert["ts"], "stuck:interrupt", value)
    wait_until(
        lambda: any("not allowed" in str(e) for e in slack.ephemerals(mallory)), 30, "refusal"
    )
    assert fleet.status()[slug]["activity"] == "working"
    slack.click(alice, channel, alert["ts"], "stuck:interrupt", value)
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 60, "idle after Interrupt")
    wait_until(
        lambda: any("interrupted the turn" in str(m.get("text")) for m in slack.messages(channel)),
        30,
        "the alert edited to say who interrupted",
    )
    edited = [m for m in slack.messages(channel) if "interrupted the turn" in str(m.get("text"))]
    assert not alerts() and len(edited) == 1 and not edited[0].get("blocks")  # used once
    slack.post_as_user(alice, channel, "after the interrupt")
    wait_until(
        lambda: any("after the interrupt" in p for p in fleet.openai.prompts()),
        90,
        "the agent takes prompts",
    )
