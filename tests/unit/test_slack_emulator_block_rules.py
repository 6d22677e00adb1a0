"""The emulator refuses the Block Kit layouts Slack refuses, naming the rule and the field.

One case per rule added for issue 21 item 2 (button url, confirmation dialogs, option
descriptions, context elements, input hints, the markdown blocks' total, the modal's pointers),
each with a layout just inside the limit that passes.
"""

from __future__ import annotations

from typing import Any

import pytest

from bridge.devtools.slack_emulator_blocks import validate_blocks
from bridge.devtools.slack_emulator_model import ApiError
from bridge.devtools.slack_emulator_views import check_view


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def button(**extra: Any) -> dict[str, Any]:
    return {"type": "button", "text": plain("Go"), "action_id": "go", **extra}


def confirm(title: int = 5, text: int = 5, yes: int = 3, no: int = 2) -> dict[str, Any]:
    return {
        "title": plain("t" * title), "text": plain("x" * text),
        "confirm": plain("y" * yes), "deny": plain("n" * no),
    }  # fmt: skip


def refused(blocks: list[Any]) -> list[str]:
    with pytest.raises(ApiError) as err:
        validate_blocks(blocks)
    assert err.value.error == "invalid_blocks"
    messages = err.value.extra["response_metadata"]["messages"]
    assert all(m.startswith("[ERROR] ") and "[json-pointer:/" in m for m in messages)
    return list(err.value.extra["errors"])


def actions(*elements: Any) -> list[Any]:
    return [{"type": "actions", "elements": list(elements)}]


def test_button_url_at_most_3000() -> None:
    validate_blocks(actions(button(url="https://x/" + "a" * 2990)))
    errors = refused(actions(button(url="https://x/" + "a" * 2991)))
    assert errors == ["must be less than 3001 characters [json-pointer:/blocks/0/elements/0/url]"]


@pytest.mark.parametrize(
    ("field", "kwargs", "limit"),
    [("title", {"title": 101}, 100), ("text", {"text": 301}, 300),
     ("confirm", {"yes": 31}, 30), ("deny", {"no": 31}, 30)],
)  # fmt: skip
def test_confirm_dialog_limits(field: str, kwargs: dict[str, int], limit: int) -> None:
    validate_blocks(actions(button(confirm=confirm(100, 300, 30, 30))))
    errors = refused(actions(button(confirm=confirm(**kwargs))))
    where = f"/blocks/0/elements/0/confirm/{field}/text"
    assert errors == [f"must be less than {limit + 1} characters [json-pointer:{where}]"]


def test_option_description_at_most_75() -> None:
    def boxes(n: int) -> list[Any]:
        option = {"text": plain("a"), "value": "0", "description": plain("d" * n)}
        return actions({"type": "checkboxes", "action_id": "c", "options": [option]})

    validate_blocks(boxes(75))
    where = "/blocks/0/elements/0/options/0/description/text"
    assert refused(boxes(76)) == [f"must be less than 76 characters [json-pointer:{where}]"]


def test_context_elements_are_text_or_images() -> None:
    image = {"type": "image", "image_url": "https://x/a.png", "alt_text": "a"}
    validate_blocks([{"type": "context", "elements": [image, {"type": "mrkdwn", "text": "hi"}]}])
    errors = refused([{"type": "context", "elements": [button()]}])
    assert errors == [
        "must be a text object of type plain_text or mrkdwn [json-pointer:/blocks/0/elements/0]"
    ]


def test_input_hint_at_most_2000() -> None:
    def block(n: int) -> list[Any]:
        element = {"type": "plain_text_input", "action_id": "t"}
        return [{"type": "input", "label": plain("L"), "hint": plain("h" * n), "element": element}]

    validate_blocks(block(2000))
    assert refused(block(2001)) == [
        "must be less than 2001 characters [json-pointer:/blocks/0/hint/text]"
    ]


def test_markdown_blocks_total_at_most_12000() -> None:
    validate_blocks([{"type": "markdown", "text": "a" * 6000}] * 2)
    errors = refused(
        [{"type": "markdown", "text": "a" * 6000}] * 2 + [{"type": "markdown", "text": "b"}]
    )
    assert errors == [
        "markdown blocks must total less than 12001 characters [json-pointer:/blocks]"
    ]
    assert refused([{"type": "markdown", "text": ""}]) == [
        "must be a non-empty string [json-pointer:/blocks/0/text]"
    ]


def test_modal_problems_name_their_field() -> None:
    view = {"type": "modal", "title": plain("T"), "submit": plain("s" * 25), "blocks": []}
    view["private_metadata"] = "m" * 3001
    with pytest.raises(ApiError) as err:
        check_view(view)
    messages = err.value.extra["response_metadata"]["messages"]
    assert any("[json-pointer:/view/submit]" in m for m in messages)
    assert any("[json-pointer:/view/private_metadata]" in m for m in messages)
