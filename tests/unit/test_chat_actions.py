"""The generic interactive layer: Block Kit messages, clicks and modals through the real
SlackBackend (slack-bolt Socket Mode) against the emulator.

Features (questions, approvals, stuck-turn alerts) build on this: a message with blocks, a
click that reaches ``ChatBackend.on_action`` as an :class:`Action`, a note only the clicker
sees, an update that removes the buttons, and a modal whose submission comes back with its form.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bridge.chat.protocol import Action, Outgoing
from bridge.chat.slack.backend import SlackBackend
from bridge.devtools.slack_emulator import SlackEmulator

BUTTONS = (
    {"type": "section", "text": {"type": "mrkdwn", "text": "Which colour?"}},
    {
        "type": "actions",
        "block_id": "pick",
        "elements": [
            {"type": "button", "action_id": "t:red", "text": {"type": "plain_text", "text": "red"},
             "value": "red"},
            {"type": "button", "action_id": "t:blue", "value": "blue",
             "text": {"type": "plain_text", "text": "blue"}},
            {"type": "checkboxes", "action_id": "t:many", "options": [
                {"text": {"type": "plain_text", "text": "a"}, "value": "a"},
                {"text": {"type": "plain_text", "text": "b"}, "value": "b"},
            ]},
        ],
    },
)  # fmt: skip
MODAL = {
    "type": "modal",
    "callback_id": "t:other",
    "private_metadata": "question-7",
    "title": {"type": "plain_text", "text": "Other"},
    "submit": {"type": "plain_text", "text": "Send"},
    "blocks": [
        {
            "type": "input",
            "block_id": "answer",
            "label": {"type": "plain_text", "text": "Your answer"},
            "element": {"type": "plain_text_input", "action_id": "text"},
        }
    ],
}


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    with SlackEmulator() as emulator:
        yield emulator


async def _until(check: object, timeout: float = 30.0) -> None:
    assert callable(check)
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_click_reaches_on_action_and_its_note_is_ephemeral(emu: SlackEmulator) -> None:
    cid = emu.add_channel("agent")
    alice = emu.add_user("alice")
    emu.join(alice, cid)
    seen: list[Action] = []

    async def scenario() -> None:
        backend = SlackBackend(emu.bot_token, emu.app_token, emu.api_url)

        async def handler(action: Action) -> str | None:
            seen.append(action)
            return f"you chose {action.value or ','.join(action.values)}"

        backend.on_action = handler
        await backend.start()
        try:
            posted = await backend.post(Outgoing("a", cid, "Which colour?", "q1", blocks=BUTTONS))
            emu.click(alice, cid, posted.ref, "t:blue")
            await _until(lambda: emu.ephemerals(user=alice))
            emu.click(alice, cid, posted.ref, "t:many", selected_options=["a", "b"])
            await _until(lambda: len(seen) == 2)
            await backend.update(cid, posted.ref, "Which colour? blue (alice)")
        finally:
            await backend.close()

    asyncio.run(scenario())
    first, second = seen
    assert (first.user, first.channel, first.action_id, first.value) == (
        alice,
        cid,
        "t:blue",
        "blue",
    )
    assert first.message_ref and first.trigger_id and first.block_id == "pick"
    assert second.values == ("a", "b")
    assert "you chose blue" in emu.ephemerals(user=alice)[0]["text"]
    message = next(m for m in emu.messages(cid) if m.get("text", "").startswith("Which colour?"))
    assert message["text"].endswith("(alice)") and not message.get("blocks")


def test_a_modal_opened_from_a_click_comes_back_with_its_form(emu: SlackEmulator) -> None:
    cid = emu.add_channel("agent")
    bob = emu.add_user("bob")
    emu.join(bob, cid)
    seen: list[Action] = []

    async def scenario() -> None:
        backend = SlackBackend(emu.bot_token, emu.app_token, emu.api_url)

        async def handler(action: Action) -> str | None:
            seen.append(action)
            if action.action_id == "t:red" and action.trigger_id:
                await backend.open_view(action.trigger_id, MODAL)
            return None

        backend.on_action = handler
        await backend.start()
        try:
            posted = await backend.post(Outgoing("a", cid, "Which colour?", "q2", blocks=BUTTONS))
            emu.click(bob, cid, posted.ref, "t:red")
            await _until(lambda: emu.views(user=bob))
            view_id = emu.views(user=bob)[0]["id"]
            emu.submit_view(bob, view_id, {"answer": {"text": "purple please"}})
            await _until(lambda: len(seen) == 2)
        finally:
            await backend.close()

    asyncio.run(scenario())
    submitted = seen[1]
    assert submitted.action_id == "t:other" and submitted.user == bob
    assert submitted.form == {"answer.text": "purple please"}
    assert submitted.private_metadata == "question-7"


def test_without_a_handler_a_click_is_acknowledged_and_ignored(emu: SlackEmulator) -> None:
    cid = emu.add_channel("agent")
    carol = emu.add_user("carol")
    emu.join(carol, cid)

    async def scenario() -> None:
        backend = SlackBackend(emu.bot_token, emu.app_token, emu.api_url)
        await backend.start()
        try:
            posted = await backend.post(Outgoing("a", cid, "Which colour?", "q3", blocks=BUTTONS))
            payload = emu.click(carol, cid, posted.ref, "t:blue")
            await _until(lambda: any(d.get("acked") for d in emu.deliveries()
                                     if d.get("payload", {}).get("trigger_id")
                                     == payload["trigger_id"]))  # fmt: skip
        finally:
            await backend.close()

    asyncio.run(scenario())
    assert emu.ephemerals(user=carol) == []
