"""End to end: no secret in an approval, a question or a modal leaves for Slack (issue 20 item 4).

The real Claude (and Codex, for the command approval) under ``permissions: ask`` in tmux, the
real runner against the loopback Slack emulator. The agent asks to run a ``curl`` with a bearer
header and to write a ``.env``, and asks a question whose text and option hold tokens; people
click Allow, Deny with a reason (a modal) and Other… (a modal holding the question). Every Web
API call the bot made (posts, updates, ephemerals, modals, uploads) is read back from the
emulator's call log, with the modals and ephemerals it kept: none holds a secret, while the
file the agent wrote holds them intact (redaction is on the way out only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Fleet, wait_until
from tests.e2e.test_questions import answered_in_thread, ask_message, buttons, closed
from tests.e2e.test_slack import setup_agent

pytestmark = pytest.mark.e2e

ANT = "sk-ant-api03-" + "Q7" * 20
GH = "ghp_" + "a1B2c3D4e5" * 4
AWS = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SECRETS = (ANT, GH, AWS)


def leaked(slack: Any) -> list[str]:
    """Each secret found in what the bot sent or Slack shows people for it."""
    sent = json.dumps(
        {
            "calls": slack.calls(),
            "views": slack.views(),
            "ephemerals": slack.ephemerals(),
            "responses": slack.responses(),
            "files": slack.files(),
        },
        default=str,
    )
    return [s for s in SECRETS if s in sent]


@pytest.mark.parametrize("runtime", ["claude", "codex"])
def test_approvals_questions_and_modals_carry_no_secret_to_slack(
    fleet: Fleet, slack: Any, runtime: str
) -> None:
    slug = f"redact-{runtime}"
    alice, channel, _ = setup_agent(fleet, slack, slug, runtime, permissions="ask")
    workdir = Path(fleet.agents_by_slug(slug)["workdir"])
    fleet.write_config()
    fleet.start_runner()
    wait_until(lambda: fleet.status().get(slug, {}).get("alive"), 90, f"{slug} alive")
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 90, f"{slug} idle")

    # 1. A curl with a bearer header: denied with a reason (a modal), the message rewritten.
    curl = f'curl -s -m 2 -H "Authorization: Bearer {ANT}" http://127.0.0.1:9/; echo curl-done'
    root = slack.post_as_user(alice, channel, f"call it APPROVE:{curl}")
    msg = wait_until(lambda: ask_message(slack, channel), 90, "the curl approval")
    assert "Bearer [REDACTED" in json.dumps(msg["blocks"])
    slack.click(alice, channel, msg["ts"], buttons(msg)["Deny with a reason…"], "denywhy")
    view = wait_until(lambda: slack.views(user=alice), 30, "the reason form")[-1]
    slack.submit_view(alice, view["id"], {"answer": {"text": f"never send {GH}"}})
    closed(slack, channel, msg["ts"], "denied it")
    wait_until(lambda: answered_in_thread(slack, channel, root, "result:"), 90, "the model told")
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 60, "the first turn finished")
    if runtime == "codex":  # the Codex fake has no Write tool and Codex asks no questions here
        assert not leaked(slack), leaked(slack)
        return

    # 2. A Write of .env: allowed once; the file holds the real secrets, Slack none.
    env = workdir / ".env"
    content = f"GITHUB_TOKEN={GH}\\nAWS_SECRET_ACCESS_KEY={AWS}\\nANTHROPIC_API_KEY={ANT}"
    slack.post_as_user(alice, channel, f"save it WRITE:{env}|{content}")
    msg = wait_until(lambda: ask_message(slack, channel), 90, "the Write approval")
    assert ".env" in json.dumps(msg["blocks"]) and "[REDACTED" in json.dumps(msg["blocks"])
    slack.click(alice, channel, msg["ts"], buttons(msg)["Allow once"], "allow")
    wait_until(env.exists, 90, "the .env written")
    closed(slack, channel, msg["ts"], "allowed it once")
    assert GH in env.read_text() and AWS in env.read_text()
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 60, "the second turn finished")

    # 3. A question holding tokens in its text and options: Other… opens a modal showing it.
    slack.post_as_user(alice, channel, f"ask ASK:Use the key {ANT} here?|{GH}|no")
    msg = wait_until(lambda: ask_message(slack, channel), 90, "the question")
    ids = buttons(msg)
    slack.click(alice, channel, msg["ts"], ids["Other…"], "other")
    wait_until(lambda: len(slack.views(user=alice)) >= 2, 30, "the Other… form")
    other = slack.views(user=alice)[-1]
    assert "[REDACTED" in json.dumps(other["view"])
    slack.submit_view(alice, other["id"], {"answer": {"text": "neither"}})
    closed(slack, channel, msg["ts"], "neither")
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 60, "the third turn finished")

    assert not leaked(slack), leaked(slack)
    methods = {method for method, _ in slack.calls()}
    assert {"chat.postMessage", "chat.update", "views.open"} <= methods
