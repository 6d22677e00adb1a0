"""Modals in the Slack emulator: `views.open` / `update` / `push`, submissions and their acks.

`views.open` needs a fresh `trigger_id` (from a click or a slash command, 3 seconds, one use) and
a modal view, checked like Slack checks it (a title of at most 24 characters, at most 100 blocks,
a `submit` button whenever there is an input block). A person then submits the modal:
`SlackEmulator.submit_view` sends a `view_submission` payload whose `view.state.values` holds what
they entered (Slack's client refuses to submit while a required input is empty, so the emulator
raises instead). The app's ack decides what happens next, as on Slack: a plain ack closes the
modal, `response_action: errors` keeps it open with the messages, `update` replaces it, `push`
stacks a new one and `clear` closes the whole stack. No ack in time leaves the modal open
(Slack shows an error in it), so it can be submitted again.
"""

from __future__ import annotations

import copy
import secrets
import time
from collections.abc import Mapping
from typing import Any

from bridge.devtools.slack_emulator_apibase import ApiBase
from bridge.devtools.slack_emulator_blocks import (
    VIEW_BLOCKS,
    chosen_state,
    elements,
    initial_state,
    state_values,
    validate_blocks,
)
from bridge.devtools.slack_emulator_interactive import (
    VERIFICATION_TOKEN,
    issue_trigger,
    take_trigger,
    team_ref,
)
from bridge.devtools.slack_emulator_model import ApiError, Delivery, Json, json_param
from bridge.devtools.slack_emulator_state import WorkspaceState

STACK_LIMIT = 3
"""Slack: at most 3 views in a modal's stack (`push_limit_reached`)."""


def _plain(obj: Any, limit: int) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("type") == "plain_text"
        and isinstance(obj.get("text"), str)
        and 0 < len(obj["text"]) <= limit
    )


def check_view(value: Any) -> Json:
    """A modal view as the app sent it, checked; Slack answers `invalid_arguments` with the
    reasons in `response_metadata.messages`."""
    spec = json_param(value)
    problems: list[str] = []
    if not isinstance(spec, dict) or spec.get("type") != "modal":
        raise ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] not a modal"]})
    if not _plain(spec.get("title"), 24):
        problems.append("title must be plain_text of 1 to 24 characters [json-pointer:/view/title]")
    for key in ("submit", "close"):
        if key in spec and not _plain(spec[key], 24):
            problems.append(
                f"{key} must be plain_text of 1 to 24 characters [json-pointer:/view/{key}]"
            )
    if len(str(spec.get("private_metadata", ""))) > 3000:
        # https://docs.slack.dev/reference/views/modal-views (title/submit/close 24, metadata 3000)
        problems.append(
            "private_metadata must be at most 3000 characters [json-pointer:/view/private_metadata]"
        )
    blocks: list[Json] = []
    try:
        blocks = validate_blocks(spec.get("blocks", []), VIEW_BLOCKS, message=False)
    except ApiError as err:
        problems += list(err.extra.get("errors") or [err.error])
    if any(b.get("type") == "input" for b in blocks) and "submit" not in spec:
        problems.append("submit is required when an input block is within the blocks array")
    if problems:
        messages = [f"[ERROR] {p}" for p in problems]
        raise ApiError("invalid_arguments", response_metadata={"messages": messages})
    return {**spec, "blocks": blocks}


def _render(st: WorkspaceState, vid: str, spec: Json, root: str, previous: str | None) -> Json:
    """The view object Slack answers with (and sends back in `view_submission`)."""
    return dict(
        id=vid, team_id=st.team_id, type="modal", blocks=spec["blocks"],
        private_metadata=str(spec.get("private_metadata", "")),
        callback_id=str(spec.get("callback_id", "")), state={"values": {}},
        hash=f"{int(time.time())}.{secrets.token_hex(4)}", title=spec["title"],
        clear_on_close=bool(spec.get("clear_on_close")),
        notify_on_close=bool(spec.get("notify_on_close")), close=spec.get("close"),
        submit=spec.get("submit"), previous_view_id=previous, root_view_id=root,
        app_id=st.app_id, external_id=str(spec.get("external_id", "")),
        app_installed_team_id=st.team_id, bot_id=st.bot_id,
    )  # fmt: skip


def _open(st: WorkspaceState, user: str, spec: Json, below: Json | None = None) -> Json:
    vid = st.new_id("V")
    root = below["view"]["root_view_id"] if below else vid
    view = _render(st, vid, spec, root, below["id"] if below else None)
    st.views[vid] = {"id": vid, "user": user, "state": "open", "view": view, "errors": None}
    st.touch()
    return view


def _top(st: WorkspaceState, user: str) -> Json | None:
    """The user's open view on top of its stack (the last one opened)."""
    open_ = [r for r in st.views.values() if r["user"] == user and r["state"] == "open"]
    return open_[-1] if open_ else None


class ViewsApi(ApiBase):
    """`views.open`, `views.update`, `views.push`."""

    def api_views_open(self, params: Json) -> Json:
        with self.state.lock:
            spec = check_view(params.get("view"))
            user = take_trigger(self.state, params.get("trigger_id"))
            return {"view": copy.deepcopy(_open(self.state, user, spec))}

    def api_views_push(self, params: Json) -> Json:
        st = self.state
        with st.lock:
            spec = check_view(params.get("view"))
            user = take_trigger(st, params.get("trigger_id"))
            below = _top(st, user)
            if below is None:
                raise ApiError("not_found")
            stack = [r for r in st.views.values() if r["state"] == "open"]
            root = below["view"]["root_view_id"]
            if sum(1 for r in stack if r["view"]["root_view_id"] == root) >= STACK_LIMIT:
                raise ApiError("push_limit_reached")
            return {"view": copy.deepcopy(_open(st, user, spec, below))}

    def api_views_update(self, params: Json) -> Json:
        st = self.state
        with st.lock:
            spec = check_view(params.get("view"))
            external = params.get("external_id")
            rec = st.views.get(str(params.get("view_id") or ""))
            if rec is None and external:
                found = (r for r in st.views.values() if r["view"]["external_id"] == external)
                rec = next(found, None)
            if rec is None:
                raise ApiError("not_found")
            old = rec["view"]
            if params.get("hash") and params["hash"] != old["hash"]:
                raise ApiError("hash_conflict")
            rec["view"] = _render(st, old["id"], spec, old["root_view_id"], old["previous_view_id"])
            rec["errors"] = None
            st.touch()
            return {"view": copy.deepcopy(rec["view"])}


def view_submission(
    st: WorkspaceState, user_id: str, view_id: str, values: Mapping[str, Any]
) -> Json:
    """The `view_submission` payload for `user_id` submitting `view_id` with `values`
    ({block_id: {action_id: value}}, or {block_id: value} for a block with one element; a value
    is text, an option value, a list of option values, or a ready state entry). Lock held."""
    user = st.user(user_id)
    rec = st.views.get(view_id)
    if rec is None or rec["user"] != user_id or rec["state"] == "closed":
        raise LookupError(f"no open view {view_id} for {user_id}")
    view = copy.deepcopy(rec["view"])
    chosen: Json = {}
    known = {(b, str(e.get("action_id"))) for b, e in elements(view["blocks"])}
    for bid, given in values.items():
        in_block = [(b, e) for b, e in elements(view["blocks"]) if b == bid]
        if not in_block:
            raise LookupError(f"view {view_id} has no block {bid!r}")
        if not isinstance(given, Mapping) or "type" in given:
            if len(in_block) != 1:
                raise ValueError(f"block {bid!r} has several elements: name the action_id")
            given = {str(in_block[0][1].get("action_id")): given}
        for aid, value in given.items():
            if (bid, aid) not in known:
                raise LookupError(f"view {view_id} has no element {aid!r} in block {bid!r}")
            element = next(e for b, e in in_block if e.get("action_id") == aid)
            chosen.setdefault(bid, {})[aid] = chosen_state(element, value)
    for block in view["blocks"]:
        if block.get("type") != "input" or block.get("optional"):
            continue
        element = block["element"]
        entry = (chosen.get(block["block_id"]) or {}).get(element["action_id"])
        entry = entry or initial_state(element) or {}
        if not any(v not in (None, "", []) for k, v in entry.items() if k != "type"):
            raise ValueError(f"block {block['block_id']!r} is required (Slack would not submit)")
    view["state"] = {"values": state_values(view["blocks"], chosen)}
    rec["state"] = "submitting"
    st.touch()
    return {
        "type": "view_submission",
        "team": team_ref(st),
        "user": user.to_ref(st.team_id),
        "api_app_id": st.app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": issue_trigger(st, user_id),
        "view": view,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def close_view(st: WorkspaceState, user_id: str, view_id: str) -> Json | None:
    """The person dismisses the modal: closed, plus a `view_closed` payload to send when the
    app asked for one (`notify_on_close`). Lock held."""
    rec = st.views.get(view_id)
    if rec is None or rec["user"] != user_id or rec["state"] == "closed":
        raise LookupError(f"no open view {view_id} for {user_id}")
    rec["state"] = "closed"
    st.touch()
    if not rec["view"]["notify_on_close"]:
        return None
    return dict(
        type="view_closed", team=team_ref(st), user=st.user(user_id).to_ref(st.team_id),
        api_app_id=st.app_id, token=VERIFICATION_TOKEN, view=copy.deepcopy(rec["view"]),
        is_cleared=False, is_enterprise_install=False, enterprise=None,
    )  # fmt: skip


def on_view_ack(st: WorkspaceState, delivery: Delivery, ack: Json | None) -> None:
    """Apply the app's answer to a `view_submission` (see the module docstring)."""
    if delivery.kind != "interactive" or delivery.payload.get("type") != "view_submission":
        return
    with st.lock:
        rec = st.views.get(str(delivery.payload["view"]["id"]))
        if rec is None or rec["state"] == "closed":
            return
        action = (ack or {}).get("response_action")
        if delivery.gave_up:  # no ack in time: Slack shows an error, the modal stays open
            rec["state"] = "open"
        elif action == "errors":
            rec["state"], rec["errors"] = "open", dict((ack or {}).get("errors") or {})
        elif action == "update":
            old = rec["view"]
            spec = check_view((ack or {}).get("view"))
            rec["view"] = _render(st, old["id"], spec, old["root_view_id"], old["previous_view_id"])
            rec["state"], rec["errors"] = "open", None
        elif action == "push":
            rec["state"] = "open"
            _open(st, rec["user"], check_view((ack or {}).get("view")), rec)
        elif action == "clear":
            root = rec["view"]["root_view_id"]
            for other in st.views.values():
                if other["view"]["root_view_id"] == root:
                    other["state"] = "closed"
        else:
            rec["state"] = "closed"
        st.touch()
