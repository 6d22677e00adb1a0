"""The demo page in a real headless Chromium: Block Kit messages, clicks, ephemerals, a modal.

A click on the page must produce the same `block_actions` payload as `SlackEmulator.click`, and
a modal submitted on the page the same `view_submission` as `submit_view`, because the page is
how a person drives the demo. Needs Debian's `chromium` and the `playwright` package (skipped
otherwise, with the reason); every wait is a DOM or emulator condition, never a sleep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient

from bridge.devtools.slack_emulator import SlackEmulator
from tests.browser import browser

pytestmark = pytest.mark.e2e

__all__ = ["browser"]  # the fixture, imported for this module


def plain(s: str) -> dict[str, str]:
    return {"type": "plain_text", "text": s}


QUESTION = [
    {"type": "header", "block_id": "h", "text": plain("Tests failed <b>twice</b>")},
    {"type": "section", "block_id": "q", "text": {"type": "mrkdwn", "text": "What *now*?"}},
    {
        "type": "actions",
        "block_id": "pick",
        "elements": [
            {
                "type": "checkboxes",
                "action_id": "suites",
                "options": [{"text": plain(s), "value": s} for s in ("unit", "e2e")],
            },
            {
                "type": "static_select",
                "action_id": "when",
                "placeholder": plain("When?"),
                "options": [{"text": plain(s), "value": s} for s in ("now", "tonight")],
            },
            {"type": "button", "action_id": "rerun", "text": plain("Re-run"), "value": "r"},
            {"type": "button", "action_id": "other", "text": plain("Other…"), "style": "danger"},
        ],
    },
]

MODAL = {
    "type": "modal",
    "title": plain("Other"),
    "submit": plain("Send"),
    "blocks": [
        {
            "type": "input",
            "block_id": "answer",
            "label": plain("What instead?"),
            "element": {"type": "plain_text_input", "action_id": "text", "multiline": True},
        }
    ],
}


def test_blocks_render_and_clicks_reach_the_app(browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with SlackEmulator(web_ui=True) as emu:
        you = emu.add_user("you", "You")
        emu.add_user("kim", "Kim")
        cid = emu.add_channel("demo", members=[you])
        web = WebClient(token=emu.bot_token, base_url=emu.api_url, timeout=10)
        ts = web.chat_postMessage(channel=cid, text="fallback", blocks=QUESTION)["ts"]
        web.chat_postEphemeral(channel=cid, user=you, text="psst, only you see this")

        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.goto(f"{emu.web_url}#demo")
        msg = page.locator(f'.msg[data-ts="{ts}"]')
        expect(msg.locator(".b-header")).to_have_text("Tests failed <b>twice</b>")  # escaped
        expect(msg.locator(".b-section b")).to_have_text("now")
        expect(msg.locator(".body")).not_to_contain_text("fallback")  # blocks, not the text
        mine = page.locator(".msg.ephemeral")
        expect(mine).to_contain_text("Only visible to you")
        expect(mine.locator(".body")).to_have_text("psst, only you see this")

        msg.locator('input[type="checkbox"][value="e2e"]').check()
        emu.wait_for(lambda: len(emu.deliveries("interactive")) == 1, 10, "checkbox click")
        msg.locator('select[data-action="when"]').select_option("tonight")
        emu.wait_for(lambda: len(emu.deliveries("interactive")) == 2, 10, "select change")
        msg.locator('button[data-action="rerun"]').click()
        emu.wait_for(lambda: len(emu.deliveries("interactive")) == 3, 10, "button click")
        # The page's clicks went through `click`: the state holds what was chosen on it.
        expected = emu.click(you, cid, ts, "rerun")
        values = expected["state"]["values"]["pick"]
        assert [o["value"] for o in values["suites"]["selected_options"]] == ["e2e"]
        assert values["when"]["selected_option"]["value"] == "tonight"
        expect(msg.locator('input[value="e2e"]')).to_be_checked()  # redrawn from that state

        # Another person sees neither your ephemeral message nor your choices.
        page.locator("#user").select_option(label="Kim")
        expect(page.locator(".msg.ephemeral")).to_have_count(0)
        expect(msg.locator('input[value="e2e"]')).not_to_be_checked()
        page.locator("#user").select_option(label="You")

        # A modal the app opens for "you" shows up; what is typed there is submitted.
        web.views_open(trigger_id=expected["trigger_id"], view=MODAL)
        dialog = page.locator("#modal")
        expect(dialog).to_be_visible()
        expect(dialog.locator("h3")).to_have_text("Other")
        dialog.locator('textarea[data-action="text"]').fill("skip e2e, ship it")
        dialog.locator("#modal-submit").click()
        emu.wait_for(lambda: emu.views()[0]["state"] == "submitting", 10, "submitted")
        # the view's state changes before its delivery is recorded: wait for the delivery
        emu.wait_for(
            lambda: emu.deliveries("interactive")[-1]["payload"]["type"] == "view_submission",
            10,
            "the submission delivered",
        )
        sent = emu.deliveries("interactive")[-1]["payload"]
        assert sent["view"]["state"]["values"]["answer"]["text"]["value"] == "skip e2e, ship it"
        page.screenshot(path=str(tmp_path / "blocks.png"), full_page=True)
    assert (tmp_path / "blocks.png").stat().st_size > 0
