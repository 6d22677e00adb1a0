"""The scope table (bridge/chat/slack/scopes.py) against the code and the manifest.

Every Slack Web API method the code under ``bridge/`` calls (a ``client.<method>`` of slack_sdk's
``WebClient``, an ``api_call("...")``, or the methods a composite helper such as
``files_upload_v2`` makes) must be in the table; every scope the table needs must be in
``deploy/slack-app-manifest.yaml``; every scope there must be needed by something (a method, an
event subscription, the slash command); and removing any one scope from the manifest fails,
naming the methods that need it. The emulator's own copy of Slack's method reference must agree.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import slack_sdk.web.client
import yaml

from bridge.chat.slack import scopes
from bridge.devtools import slack_emulator_scopes as emulator_scopes

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "deploy" / "slack-app-manifest.yaml"


@cache
def sdk_methods() -> dict[str, frozenset[str]]:
    """slack_sdk ``WebClient`` method name -> the Slack methods a call of it makes (read from
    its source: ``self.api_call("chat.postMessage", ...)``, or the ``self.<method>(...)`` calls
    of a helper like ``files_upload_v2``)."""
    tree = ast.parse(Path(slack_sdk.web.client.__file__).read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "WebClient")
    direct: dict[str, str] = {}
    calls: dict[str, set[str]] = {}
    for fn in cls.body:
        if not isinstance(fn, ast.FunctionDef) or fn.name.startswith("_"):
            continue
        for node in ast.walk(fn):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            owner = node.func.value
            if not (isinstance(owner, ast.Name) and owner.id == "self"):
                continue
            arg = node.args[0] if node.args else None
            if node.func.attr == "api_call" and isinstance(arg, ast.Constant):
                direct.setdefault(fn.name, str(arg.value))
            else:
                calls.setdefault(fn.name, set()).add(node.func.attr)

    def resolve(name: str, seen: frozenset[str] = frozenset()) -> frozenset[str]:
        if name in direct:
            return frozenset({direct[name]})
        inner = calls.get(name, set()) - seen - {name}
        return frozenset(m for callee in inner for m in resolve(callee, seen | {name}))

    names = set(direct) | set(calls)
    return {n: found for n in names if (found := resolve(n))}


def called_methods() -> dict[str, set[str]]:
    """Slack method -> the files under bridge/ (not the emulator) that call it."""
    known = sdk_methods()
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / "bridge").rglob("*.py")):
        rel = str(path.relative_to(REPO))
        if rel.startswith("bridge/devtools/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            methods: frozenset[str] = frozenset()
            if isinstance(node, ast.Attribute) and node.attr in known:
                methods = known[node.attr]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "api_call"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                methods = frozenset({str(node.args[0].value)})
            for method in methods:
                found.setdefault(method, set()).add(rel)
    return found


IMPLICIT = {"auth.test": "slack_bolt's authorize", "apps.connections.open": "Socket Mode"}
"""Methods slack_bolt / slack_sdk call for the product without a call in its code."""


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def manifest_scopes(manifest: dict[str, Any]) -> set[str]:
    return set(manifest["oauth_config"]["scopes"]["bot"])


def manifest_events(manifest: dict[str, Any]) -> set[str]:
    return set(manifest["settings"]["event_subscriptions"]["bot_events"])


def problems(granted: set[str], events: set[str]) -> list[str]:
    """Everything wrong between a manifest's scopes and events and the table, one line each."""
    out: list[str] = []
    for name, need in scopes.all_needs().items():
        for scope in need.scopes:
            if scope not in granted:
                out.append(f"{name} needs {scope} ({need.feature}), not in the manifest")
    for scope in sorted(granted - scopes.required()):
        out.append(f"{scope} is in the manifest but no method, event or command needs it")
    for event in sorted(events - set(scopes.EVENTS)):
        out.append(f"the manifest subscribes to {event}, which the scope table does not know")
    for event in sorted(set(scopes.EVENTS) - events):
        out.append(f"the table lists event {event}, which the manifest does not subscribe to")
    return out


def test_the_scanner_sees_the_calls_it_must() -> None:
    """The scan itself works: it maps the helper and the direct calls the backend makes."""
    assert sdk_methods()["files_upload_v2"] == {
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    }
    assert sdk_methods()["chat_postMessage"] == {"chat.postMessage"}
    found = called_methods()
    assert "bridge/chat/slack/posting.py" in found["chat.postMessage"]
    assert "files.completeUploadExternal" in found


def test_every_method_the_code_calls_is_in_the_table() -> None:
    found = called_methods()
    unknown = {m: sorted(where) for m, where in found.items() if m not in scopes.METHODS}
    assert not unknown, f"Slack methods called but missing from scopes.METHODS: {unknown}"
    unused = set(scopes.METHODS) - set(found) - set(IMPLICIT)
    assert not unused, f"scopes.METHODS lists methods nothing calls: {sorted(unused)}"


def test_the_manifest_holds_every_needed_scope_and_nothing_else(manifest: dict[str, Any]) -> None:
    assert problems(manifest_scopes(manifest), manifest_events(manifest)) == []
    assert "files:read" in manifest_scopes(manifest)  # url_private downloads (issue 20.17)


MANIFEST_SCOPES = sorted(yaml.safe_load(MANIFEST.read_text())["oauth_config"]["scopes"]["bot"])


@pytest.mark.parametrize("scope", MANIFEST_SCOPES)
def test_removing_any_scope_fails_naming_its_methods(manifest: dict[str, Any], scope: str) -> None:
    found = problems(manifest_scopes(manifest) - {scope}, manifest_events(manifest))
    users = scopes.users_of(scope)
    assert users, f"{scope}: needed by nothing"
    assert found and all(scope in line for line in found)
    for user in users:
        assert any(line.startswith(f"{user} needs {scope}") for line in found), (user, found)


def test_each_manifest_scope_says_who_needs_it(manifest: dict[str, Any]) -> None:
    """No scope for nothing: each is there for a method, an event or the command."""
    who = {scope: scopes.users_of(scope) for scope in sorted(manifest_scopes(manifest))}
    assert all(who.values()), who
    assert who["files:read"] == ["file download (url_private)"]
    assert who["channels:history"] == [
        "conversations.history",
        "conversations.replies",
        "event message.channels",
    ]
    assert who["commands"] == ["/agent (slash command)"]


def test_the_emulator_agrees_with_the_table() -> None:
    """The emulator's copy of Slack's reference and the product's table: the same scopes."""
    for method, need in scopes.METHODS.items():
        if method in emulator_scopes.BY_KIND:
            theirs = set(emulator_scopes.BY_KIND[method])
        elif method == "conversations.list":
            theirs = {"channels:read", "groups:read"}
        else:
            assert method in emulator_scopes.PLAIN, f"the emulator does not know {method}"
            theirs = {s for s in [emulator_scopes.PLAIN[method]] if s}
        assert set(need.scopes) == theirs, method
    assert scopes.OTHER["file download (url_private)"].scopes == (emulator_scopes.DOWNLOAD,)
    names = {"channel": "message.channels", "group": "message.groups"}
    theirs_events = {
        names.get(str(ctype), kind): (scope,)
        for (kind, ctype), scope in emulator_scopes.EVENT_SCOPES.items()
    }
    assert theirs_events == {name: need.scopes for name, need in scopes.EVENTS.items()}
    assert scopes.required() <= emulator_scopes.KNOWN


def test_missing_names_each_scope_with_what_it_breaks() -> None:
    granted = scopes.required() - {"files:read", "reactions:write"}
    assert scopes.missing(granted) == {
        "reactions:write": ["the receipt reactions on steering messages"],
        "files:read": ["downloading files people share with a steering message"],
    }
    assert scopes.missing(scopes.required()) == {}
    assert scopes.parse_header(" chat:write, files:read ,") == {"chat:write", "files:read"}
    assert scopes.parse_header(None) is None
