"""Block Kit in the Slack emulator: the checks Slack makes on `blocks`, and clicks on elements.

Slack refuses a malformed `blocks` array with `invalid_blocks` and a list of what is wrong, each
ending in a json-pointer (`must be less than 76 characters [json-pointer:/blocks/0/...]`), and
fills in a `block_id` / `action_id` the app left out. A click becomes a `block_actions` payload
whose `actions[0]` and `state.values` depend on the element's type: buttons carry `value`,
single selects `selected_option`, checkboxes and multi selects `selected_options`.

The limits checked are Slack's documented ones for the blocks and elements an app is likely to
send (section, header, context, divider, actions, input; buttons, checkboxes, radio buttons,
selects, overflow, text inputs; confirmation dialogs, option descriptions, input hints, button
urls, the 12,000 characters all `markdown` blocks share), each citing its page on
https://docs.slack.dev/reference/block-kit. Keys Slack does not know are let through, although
Slack would refuse some: the emulator should never fail a post that real Slack accepts.
"""

from __future__ import annotations

import copy
import secrets
import string
from collections.abc import Iterator, Sequence
from typing import Any

from bridge.devtools.slack_emulator_model import ApiError, Json

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
BLOCK_TYPES = frozenset(
    {"section", "actions", "context", "divider", "header", "image", "input", "rich_text"}
    | {"file", "video", "markdown", "context_actions", "table"}
)
SINGLE = frozenset({"static_select", "radio_buttons", "external_select", "overflow"})
"""Elements whose choice is one `selected_option` (overflow's is not kept in `state`)."""
MULTI = frozenset({"checkboxes", "multi_static_select", "multi_external_select"})
TEXT = frozenset(
    {"plain_text_input", "email_text_input", "url_text_input", "number_input", "rich_text_input"}
)
PICKERS = {
    "datepicker": "selected_date", "timepicker": "selected_time",
    "datetimepicker": "selected_date_time", "users_select": "selected_user",
    "multi_users_select": "selected_users", "conversations_select": "selected_conversation",
    "multi_conversations_select": "selected_conversations",
    "channels_select": "selected_channel", "multi_channels_select": "selected_channels",
}  # fmt: skip
"""Elements whose state is one field named after what was picked."""
ELEMENTS = SINGLE | MULTI | TEXT | set(PICKERS) | {"button", "workflow_button"}
OPTION_LIMITS = {"checkboxes": 10, "radio_buttons": 10, "overflow": 5}
"""Most options an element may have; selects allow 100."""
MARKDOWN_TOTAL = 12000
"""All `markdown` blocks of one payload together (the "cumulative limit" of
https://docs.slack.dev/reference/block-kit/blocks/markdown-block)."""
MESSAGE_TEXT_TOTAL = 12000
"""All the texts of one message's blocks together. Slack does not document it; it answers
`msg_blocks_too_long` from about 13,200 characters in all (measured at 13,172 to 13,297 in
https://github.com/slackapi/bolt-js/issues/2509). The emulator refuses from 12,001: stricter."""


class _Check:
    """Collects every problem with its json-pointer, as Slack lists them all at once."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, where: str, what: str) -> None:
        self.errors.append(f"{what} [json-pointer:{where}]")

    def text(self, obj: Any, where: str, limit: int, plain_only: bool = False) -> None:
        kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if not isinstance(obj, dict) or obj.get("type") not in kinds:
            self.fail(where, f"must be a text object of type {' or '.join(kinds)}")
        elif not isinstance(obj.get("text"), str) or not obj["text"]:
            self.fail(f"{where}/text", "must be a non-empty string")
        elif len(obj["text"]) > limit:
            self.fail(f"{where}/text", f"must be less than {limit + 1} characters")


def _new_id(taken: set[str]) -> str:
    """A short random id like the ones Slack generates (`XTkTR`), unique in its message."""
    alphabet = string.ascii_letters + string.digits
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(5))
        if candidate not in taken:
            taken.add(candidate)
            return candidate


def text_total(value: Any) -> int:
    """Characters of every `text` string in a payload (the texts of its text objects)."""
    if isinstance(value, dict):
        return sum(
            len(v) if k == "text" and isinstance(v, str) else text_total(v)
            for k, v in value.items()
        )
    return sum(text_total(v) for v in value) if isinstance(value, list) else 0


def validate_blocks(value: Any, limit: int = MESSAGE_BLOCKS, message: bool = True) -> list[Json]:
    """A normalised copy of `value` (ids filled in), or ApiError("invalid_blocks", errors=...).
    A `blocks` that is not an array at all is `invalid_blocks_format`, as on Slack. A
    message's blocks (``message``; not a view's) whose texts total over
    :data:`MESSAGE_TEXT_TOTAL` are `msg_blocks_too_long`."""
    if not isinstance(value, list):
        raise ApiError("invalid_blocks_format")
    blocks: list[Json] = copy.deepcopy(value)
    check = _Check()
    if len(blocks) > limit:
        check.fail("/blocks", f"no more than {limit} items allowed")
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        if not isinstance(block, dict):
            check.fail(where, "must be an object")
            continue
        if block.get("type") not in BLOCK_TYPES:
            check.fail(f"{where}/type", f"unsupported block type {block.get('type')!r}")
            continue
        bid = block.get("block_id")
        if bid is not None and (not isinstance(bid, str) or not bid or len(bid) > 255):
            check.fail(f"{where}/block_id", "must be a string of 1 to 255 characters")
        elif bid in block_ids:
            check.fail(f"{where}/block_id", f"duplicate block_id {bid!r}")
        elif bid is not None:
            block_ids.add(bid)
        _check_block(check, block, where)
    markdown = [b for b in blocks if isinstance(b, dict) and b.get("type") == "markdown"]
    if sum(len(str(b.get("text", ""))) for b in markdown) > MARKDOWN_TOTAL:
        # https://docs.slack.dev/reference/block-kit/blocks/markdown-block
        check.fail(
            "/blocks", f"markdown blocks must total less than {MARKDOWN_TOTAL + 1} characters"
        )
    if check.errors:
        messages = [f"[ERROR] {e}" for e in check.errors]
        meta = {"messages": messages}
        raise ApiError("invalid_blocks", errors=check.errors, response_metadata=meta)
    if message and text_total(blocks) > MESSAGE_TEXT_TOTAL:
        raise ApiError("msg_blocks_too_long")
    for block in blocks:
        block.setdefault("block_id", _new_id(block_ids))
        interactive = [e for _, e in _elements_of(block) if e.get("type") in ELEMENTS]
        action_ids = {str(e.get("action_id")) for e in interactive}
        for element in interactive:
            element.setdefault("action_id", _new_id(action_ids))
    return blocks


def _check_block(check: _Check, block: Json, where: str) -> None:
    kind = block["type"]
    if kind == "section":
        if "text" not in block and "fields" not in block:
            check.fail(where, "a section needs text or fields")
        if "text" in block:
            check.text(block["text"], f"{where}/text", 3000)
        fields = block.get("fields", [])
        if not isinstance(fields, list) or len(fields) > 10:
            check.fail(f"{where}/fields", "must be an array of at most 10 text objects")
        else:
            for j, f in enumerate(fields):
                check.text(f, f"{where}/fields/{j}", 2000)
        if "accessory" in block:
            _check_element(check, block["accessory"], f"{where}/accessory")
    elif kind == "header":
        check.text(block.get("text"), f"{where}/text", 150, plain_only=True)
    elif kind == "context":
        elements = block.get("elements")
        # https://docs.slack.dev/reference/block-kit/blocks/context-block: 1-10 images/texts
        if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
            check.fail(f"{where}/elements", "must be an array of 1 to 10 elements")
            return
        for j, element in enumerate(elements):
            if not (isinstance(element, dict) and element.get("type") == "image"):
                check.text(element, f"{where}/elements/{j}", 3000)
    elif kind == "markdown":
        # https://docs.slack.dev/reference/block-kit/blocks/markdown-block
        if not isinstance(block.get("text"), str) or not block["text"]:
            check.fail(f"{where}/text", "must be a non-empty string")
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
            check.fail(f"{where}/elements", "must be an array of 1 to 25 elements")
            return
        seen: set[str] = set()
        for j, element in enumerate(elements):
            _check_element(check, element, f"{where}/elements/{j}")
            aid = element.get("action_id") if isinstance(element, dict) else None
            if aid is not None and aid in seen:
                check.fail(f"{where}/elements/{j}/action_id", f"duplicate action_id {aid!r}")
            seen.add(str(aid))
    elif kind == "input":
        # https://docs.slack.dev/reference/block-kit/blocks/input-block: label, hint ≤ 2000
        check.text(block.get("label"), f"{where}/label", 2000, plain_only=True)
        if "hint" in block:
            check.text(block["hint"], f"{where}/hint", 2000, plain_only=True)
        if "element" not in block:
            check.fail(f"{where}/element", "an input block needs an element")
        else:
            _check_element(check, block["element"], f"{where}/element")


def _check_element(check: _Check, element: Any, where: str) -> None:
    if not isinstance(element, dict) or element.get("type") not in ELEMENTS | {"image"}:
        kind = element.get("type") if isinstance(element, dict) else element
        check.fail(f"{where}/type", f"unsupported element type {kind!r}")
        return
    kind = element["type"]
    aid = element.get("action_id")
    if aid is not None and (not isinstance(aid, str) or not aid or len(aid) > 255):
        check.fail(f"{where}/action_id", "must be a string of 1 to 255 characters")
    if kind == "button":
        check.text(element.get("text"), f"{where}/text", 75, plain_only=True)
        if len(str(element.get("value", ""))) > 2000:
            check.fail(f"{where}/value", "must be less than 2001 characters")
        if element.get("style") not in (None, "primary", "danger"):
            check.fail(f"{where}/style", "must be primary or danger")
        # https://docs.slack.dev/reference/block-kit/block-elements/button-element: url ≤ 3000
        if len(str(element.get("url", ""))) > 3000:
            check.fail(f"{where}/url", "must be less than 3001 characters")
    if "confirm" in element:
        _check_confirm(check, element["confirm"], f"{where}/confirm")
    if kind in SINGLE | MULTI and not kind.endswith("external_select"):
        _check_options(check, element, where)


def _check_confirm(check: _Check, confirm: Any, where: str) -> None:
    """https://docs.slack.dev/reference/block-kit/composition-objects/confirmation-dialog-object:
    title ≤ 100, text ≤ 300, confirm and deny ≤ 30."""
    if not isinstance(confirm, dict):
        check.fail(where, "must be a confirmation dialog object")
        return
    check.text(confirm.get("title"), f"{where}/title", 100, plain_only=True)
    check.text(confirm.get("text"), f"{where}/text", 300)
    check.text(confirm.get("confirm"), f"{where}/confirm", 30, plain_only=True)
    check.text(confirm.get("deny"), f"{where}/deny", 30, plain_only=True)


def _check_options(check: _Check, element: Json, where: str) -> None:
    kind = element["type"]
    options = _options(element)
    limit = OPTION_LIMITS.get(kind, 100)
    if not options or len(options) > limit:
        check.fail(f"{where}/options", f"must be an array of 1 to {limit} options")
    values = set()
    for j, option in enumerate(options):
        text_where = f"{where}/options/{j}/text"
        if not isinstance(option, dict):
            check.fail(f"{where}/options/{j}", "must be an option object")
            continue
        plain = kind.endswith("select") or kind == "overflow"
        # https://docs.slack.dev/reference/block-kit/composition-objects/option-object:
        # text ≤ 75, value ≤ 150, description ≤ 75
        check.text(option.get("text"), text_where, 75, plain_only=plain)
        if "description" in option:
            check.text(option["description"], f"{where}/options/{j}/description", 75, True)
        value = option.get("value")
        if not isinstance(value, str) or not value or len(value) > 150:
            check.fail(f"{where}/options/{j}/value", "must be a string of 1 to 150 characters")
        values.add(value)
    initial = list(element.get("initial_options") or [])
    if "initial_option" in element:
        initial.append(element["initial_option"])
    for option in initial:
        if not isinstance(option, dict) or option.get("value") not in values:
            check.fail(f"{where}/initial_option", "must match one of the options")


# -- finding elements and clicking them ---------------------------------------------------


def _options(element: Json) -> list[Any]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options += group.get("options") or [] if isinstance(group, dict) else []
    return options


def _elements_of(block: Json) -> Iterator[tuple[str, Json]]:
    bid = str(block.get("block_id", ""))
    if block.get("type") == "actions":
        yield from ((bid, e) for e in block.get("elements") or [] if isinstance(e, dict))
    elif block.get("type") == "section" and isinstance(block.get("accessory"), dict):
        yield bid, block["accessory"]
    elif block.get("type") == "input" and isinstance(block.get("element"), dict):
        yield bid, block["element"]


def elements(blocks: Sequence[Json]) -> Iterator[tuple[str, Json]]:
    """Every interactive element with its block id, in display order."""
    for block in blocks:
        yield from ((b, e) for b, e in _elements_of(block) if e.get("type") in ELEMENTS)


def find_element(blocks: Sequence[Json], action_id: str, block_id: str | None) -> tuple[str, Json]:
    for bid, element in elements(blocks):
        if element.get("action_id") == action_id and block_id in (None, bid):
            return bid, element
    where = f" in block {block_id!r}" if block_id else ""
    raise LookupError(f"no element with action_id {action_id!r}{where} in this message")


def _option(element: Json, choice: Any) -> Json:
    value = choice.get("value") if isinstance(choice, dict) else choice
    for option in _options(element):
        if isinstance(option, dict) and option.get("value") == value:
            return copy.deepcopy(option)
    raise ValueError(f"{element.get('action_id')!r} has no option with value {value!r}")


def initial_state(element: Json) -> Json | None:
    """What `state.values` shows for an element nobody has touched (None: not stateful)."""
    kind = str(element.get("type"))
    if kind in SINGLE - {"overflow"}:
        return {"type": kind, "selected_option": copy.deepcopy(element.get("initial_option"))}
    if kind in MULTI:
        return {"type": kind, "selected_options": copy.deepcopy(element.get("initial_options", []))}
    if kind in TEXT:
        return {"type": kind, "value": element.get("initial_value")}
    if kind in PICKERS:
        field = PICKERS[kind]
        return {"type": kind, field: element.get("initial_" + field.removeprefix("selected_"))}
    return None


def chosen_state(element: Json, value: Any = None, selected: Sequence[Any] | None = None) -> Json:
    """The state entry of `element` after a person set it to `value` / `selected` (option
    values or option objects); a dict with a "type" is taken as a ready state entry."""
    if isinstance(value, dict) and "type" in value:
        return copy.deepcopy(value)
    kind = str(element.get("type"))
    if kind in SINGLE:
        choice = value if value is not None else (selected or [None])[0]
        option = None if choice is None else _option(element, choice)
        return {"type": kind, "selected_option": option}
    if kind in MULTI:
        if isinstance(value, list):
            picked = list(value)
        elif selected is not None:
            picked = list(selected)
        else:
            picked = [] if value is None else [value]
        return {"type": kind, "selected_options": [_option(element, v) for v in picked]}
    if kind in TEXT:
        return {"type": kind, "value": None if value is None else str(value)}
    if kind in PICKERS:
        return {"type": kind, PICKERS[kind]: value}
    raise ValueError(f"a {kind} element holds no value")


def make_action(
    element: Json, block_id: str, action_ts: str, value: Any, selected: Sequence[Any] | None
) -> tuple[Json, Json | None]:
    """(the `actions[0]` of a block_actions payload, the new state entry or None)."""
    kind = str(element.get("type"))
    action: Json = {"action_id": element["action_id"], "block_id": block_id, "type": kind}
    if kind in ("button", "workflow_button"):
        if value is not None and value != element.get("value"):
            raise ValueError(f"button {element['action_id']!r} has value {element.get('value')!r}")
        action["text"] = copy.deepcopy(element.get("text"))
        for key in ("value", "style"):
            if key in element:
                action[key] = element[key]
        action["action_ts"] = action_ts
        return action, None
    entry = chosen_state(element, value, selected)
    action.update({k: v for k, v in entry.items() if k != "type"})
    if kind == "static_select" and "placeholder" in element:
        action["placeholder"] = copy.deepcopy(element["placeholder"])
    action["action_ts"] = action_ts
    return action, (None if kind == "overflow" else entry)


def state_values(blocks: Sequence[Json], chosen: Json) -> Json:
    """`state.values`: every stateful element, as chosen or else as initially set."""
    values: Json = {}
    for bid, element in elements(blocks):
        aid = str(element.get("action_id"))
        entry = (chosen.get(bid) or {}).get(aid) or initial_state(element)
        if entry is not None:
            values.setdefault(bid, {})[aid] = copy.deepcopy(entry)
    return values
