"""The offline demo as a person uses it: a real headless Chromium on the emulator's page.

`agentbridge demo` runs the real runner, the real CLIs on fake model servers and the loopback
Slack emulator; the first test opens the printed URL in Debian's Chromium driven by Playwright,
posts in each agent's channel with the page's own controls and waits until the agent's answer
shows up in that message's thread on the page. Then Ctrl-C must stop everything. The second
checks the page's rendering on a scripted workspace: threads, reactions, markup, escaping.

Needs Debian's `chromium` (deploy/install-test-deps.sh) and the `playwright` package (the dev
extra); Playwright's own browser downloads are never used. Without either, the tests are
skipped with the reason. Every wait is a DOM condition, never a fixed sleep.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.devtools.slack_emulator import SlackEmulator
from tests.browser import browser
from tests.integration.test_demo import SLUGS, Demo, demo_runner

pytestmark = pytest.mark.e2e

__all__ = ["browser"]  # the fixture, imported for this module

ANSWER_TIMEOUT_MS = 90_000


@pytest.fixture
def run_demo(tmp_path: Path, cli_bins: object) -> Iterator[Callable[..., Demo]]:
    with demo_runner(tmp_path) as start:
        yield start


def test_demo_page_in_a_browser_posts_and_shows_threaded_answers(
    run_demo: Callable[..., Demo], browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    demo = run_demo("--port", "0")
    url = demo.url()
    demo.wait_ready()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(url)
        expect(page.locator("#conn")).to_have_text("live", timeout=15_000)
        for slug in SLUGS:
            page.locator(f'#channels button[data-name="{slug}"]').click()
            expect(page.locator("#title")).to_have_text(f"#{slug}")
            expect(page.locator("#post")).to_have_text("Post as You")
            text = f"hello {slug} from a browser {uuid.uuid4().hex[:6]}"
            page.locator("#text").fill(text)
            page.locator("#post").click()
            expect(page.locator("#text")).to_have_value("")  # accepted by /web/post
            thread = page.locator(".thread").filter(
                has=page.locator(".msg.top.human .body", has_text=text)
            )
            expect(thread).to_have_count(1)
            answer = thread.locator(".replies .msg.bot .body", has_text=f"ack: {text}")
            expect(answer).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
            done = thread.locator('.msg.top .reaction[data-name="white_check_mark"]')
            expect(done).to_be_visible(timeout=30_000)
        ask_and_answer_by_clicking(page)
    finally:
        page.screenshot(path=str(tmp_path / "demo-page.png"), full_page=True)
    assert (tmp_path / "demo-page.png").stat().st_size > 0
    demo.interrupt_and_check_clean()


def ask_and_answer_by_clicking(page: Any) -> None:
    """The agent asks (the fake model's ``ASK:``); a click on an option's button answers it,
    and then "Other…" opens a form whose free text answers the next question."""
    from playwright.sync_api import expect

    page.locator('#channels button[data-name="demo-claude"]').click()
    for prompt, question in (
        ("pick a color ASK:Which color?|red|blue", "Which color?"),
        ("and a shade ASK:Which shade?|light|dark", "Which shade?"),
    ):
        page.locator("#text").fill(prompt)
        page.locator("#post").click()
        expect(page.locator("#text")).to_have_value("")
        thread = page.locator(".thread").filter(
            has=page.locator(".msg.top.human .body", has_text=prompt)
        )
        asked = thread.locator(".replies .msg.bot .blocks", has_text=question)
        expect(asked.locator("button.b-button").first).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
        if question == "Which color?":
            option = asked.locator(".b-section", has_text="blue")
            expect(option).to_contain_text("option blue")  # the option's description
            option.locator("button.b-button").click()
            told = f'answered: Your questions have been answered: "{question}"="blue"'
        else:
            asked.locator("button.b-button", has_text="Other…").click()
            expect(page.locator("#modal textarea")).to_be_visible(timeout=15_000)
            page.locator("#modal textarea").fill("purple please")
            page.locator("#modal-submit").click()
            told = f'answered: The user answered: "{question}"="purple please"'
        expect(asked.locator("button.b-button")).to_have_count(0, timeout=30_000)
        expect(asked).to_contain_text("You")  # who chose, instead of the buttons
        answer = thread.locator(".replies .msg.bot .body", has_text=told)
        expect(answer).to_be_visible(timeout=ANSWER_TIMEOUT_MS)


def test_page_renders_threads_reactions_markup_and_escapes(browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with SlackEmulator(web_ui=True) as emu:
        you = emu.add_user("you", "You")
        emu.add_user("kim", "Kim")
        cid = emu.add_channel("demo", members=[you])
        hostile = "<img src=x onerror=alert(1)> & <script>alert(2)</script>"
        wire = hostile.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        root = emu.post_as_user(you, cid, wire)
        emu.react_as_user(you, cid, root, "eyes")
        emu.api.post_as_bot(
            cid, {"text": "*Done* :white_check_mark:\n```x = 1\n```", "thread_ts": root}
        )

        page = browser.new_page(viewport={"width": 1100, "height": 700})
        dialogs: list[str] = []

        def on_dialog(dialog: Any) -> None:  # an alert() would mean the markup ran
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.goto(f"{emu.web_url}#demo")
        top = page.locator(".thread .msg.top").first
        expect(top.locator(".body")).to_have_text(hostile)  # shown as text, never as markup
        expect(page.locator("#messages img, #messages script")).to_have_count(0)
        expect(top.locator('.reaction[data-name="eyes"]')).to_have_text("👀 1")
        reply = page.locator(".thread .replies .msg.bot").first
        expect(reply.locator(".body b")).to_have_text("Done")
        expect(reply.locator(".body")).to_contain_text("✅")
        expect(reply.locator(".body pre code")).to_have_text("x = 1")

        # Reply in thread as another human, picked in the "post as" list.
        top.hover()
        top.locator(".reply-btn").click()
        expect(page.locator("#reply-to")).to_contain_text("replying in thread")
        page.locator("#user").select_option(label="Kim")
        expect(page.locator("#post")).to_have_text("Reply as Kim")
        page.locator("#text").fill("from the thread")
        page.keyboard.press("Enter")
        mine = page.locator(".thread .replies .msg.human .body", has_text="from the thread")
        expect(mine).to_be_visible()
        expect(page.locator(".thread .replies .msg.human .author")).to_have_text("Kim")
        thread = emu.thread(cid, root)
        assert [m["text"] for m in thread][-1] == "from the thread"
        assert thread[-1]["user"] != you
        # Live: a change made elsewhere shows up without a reload.
        emu.post_as_user(you, cid, "pushed by the server")
        expect(page.locator(".msg.top .body", has_text="pushed by the server")).to_be_visible()
        page.screenshot(path=str(tmp_path / "render.png"), full_page=True)
        assert dialogs == []
