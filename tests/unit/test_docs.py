"""The docs and deploy files stay true to the code.

The configuration reference is generated from the schema and must be regenerated with it; the
README's configuration tables must name every key; the Slack manifest must grant what the runner
needs; the systemd units must be valid units; the container must install the pinned CLIs the
runtimes were verified against.
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from bridge.config.model import AgentConfig, Config

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
REFERENCE = REPO / "docs" / "configuration.md"
DOCGEN = REPO / "docs" / "gen_configuration.py"
REGENERATE = "python docs/gen_configuration.py > docs/configuration.md"


def _load_docgen() -> types.ModuleType:
    """docs/gen_configuration.py is a dev tool, not part of the installed package."""
    spec = importlib.util.spec_from_file_location("gen_configuration", DOCGEN)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


docgen = _load_docgen()

#: Keys README.md's configuration tables do not list yet. Remove an entry once README has its
#: row (the test fails on a stale entry, so this list only ever shrinks).
README_GAPS: dict[type[BaseModel], frozenset[str]] = {
    Config: frozenset(),
    AgentConfig: frozenset(),
}


# -- (a) the configuration reference is in sync --------------------------------------------------


def test_configuration_reference_is_up_to_date() -> None:
    assert REFERENCE.exists(), f"docs/configuration.md is missing; run: {REGENERATE}"
    assert REFERENCE.read_text(encoding="utf-8") == docgen.render(), (
        f"docs/configuration.md is out of date with bridge/config/model.py; run: {REGENERATE}"
    )


def test_every_field_has_a_description() -> None:
    """A new field without a docstring would show up with an empty description."""
    docstrings = docgen._config_docstrings()
    missing = [
        f"{s.model.__name__}.{name}"
        for s in docgen.SECTIONS
        for name in s.model.model_fields
        if not docgen.describe(s.model, name, docstrings)
    ]
    assert not missing, (
        f"fields without a description: {', '.join(missing)}; give each an attribute "
        "docstring in bridge/config/model.py"
    )


def test_fallback_descriptions_are_not_shadowed() -> None:
    """Once config.py documents a field, its fallback in docgen is dead text: drop it."""
    docstrings = docgen._config_docstrings()
    unknown = [f"{m.__name__}.{n}" for (m, n) in docgen._FALLBACK if n not in m.model_fields]
    shadowed = [
        f"{m.__name__}.{n}"
        for (m, n) in docgen._FALLBACK
        if n in m.model_fields and (m.model_fields[n].description or (m.__name__, n) in docstrings)
    ]
    assert not unknown, f"_FALLBACK names fields that do not exist: {', '.join(unknown)}"
    assert not shadowed, (
        "docs/gen_configuration.py _FALLBACK entries now documented in config/model.py: "
        + ", ".join(shadowed)
    )


def test_attribute_docstrings_are_read_from_source() -> None:
    source = '''
class A:
    """class doc"""

    x: int = 1
    """About x."""
    y: str
    z: float = 2.0
    """About z,
    on two lines."""

    def method(self) -> None:
        """Not a field."""
'''
    assert docgen.attribute_docstrings(source) == {
        ("A", "x"): "About x.",
        ("A", "z"): "About z,\non two lines.",
    }


def test_reference_links_resolve() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', text))
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links <= anchors, f"broken links in docs/configuration.md: {sorted(links - anchors)}"


# -- (b) every key is documented ------------------------------------------------------------------


def _readme_config_keys() -> set[str]:
    """Backticked names in the first column of README.md's '## Configuration' tables."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Configuration\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, "README.md has no '## Configuration' section"
    keys: set[str] = set()
    for line in match.group(1).splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        first = line.strip("|").split("|")[0]
        keys.update(re.findall(r"`([a-z_]+)`", first))
    return keys


@pytest.mark.parametrize("model", [Config, AgentConfig], ids=lambda m: m.__name__)
def test_every_key_is_in_the_reference(model: type[BaseModel]) -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    missing = [k for k in model.model_fields if f"`{k}`" not in text]
    assert not missing, f"docs/configuration.md lacks {model.__name__} keys: {missing}"


@pytest.mark.parametrize("model", [Config, AgentConfig], ids=lambda m: m.__name__)
def test_every_key_is_in_the_readme(model: type[BaseModel]) -> None:
    listed = _readme_config_keys()
    keys = set(docgen.file_keys(model))  # loader-set fields (Config.path) are not file keys
    missing = keys - listed
    gaps = README_GAPS[model]
    unexpected = sorted(missing - gaps)
    stale = sorted(gaps - missing)
    assert not unexpected, (
        f"README.md's configuration tables lack {model.__name__} keys: {unexpected} "
        "(see docs/configuration.md for their type, default and meaning)"
    )
    assert not stale, f"README.md now lists {stale}: remove them from README_GAPS in {__file__}"


# -- (c) the Slack app manifest -------------------------------------------------------------------

#: What the runner calls or receives, and the bot scope each needs.
BOT_SCOPES = {
    "chat:write",  # chat.postMessage / chat.update, with message metadata
    "channels:history",  # message.channels events; conversations.history (settling intents)
    "groups:history",  # the same for private channels
    "channels:read",  # conversations.list / conversations.info (doctor, "#name" channels)
    "groups:read",
    "channels:join",
    "reactions:write",
    "files:write",
    "files:read",  # download the files people share (url_private)
    "users:read",
    "commands",  # /agent
    "app_mentions:read",
}
EVENT_SCOPES = {
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "app_mention": "app_mentions:read",
}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "slack-app-manifest.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_manifest_uses_socket_mode(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True
    # Socket Mode apps have no public endpoint: a request_url would be ignored at best.
    assert "request_url" not in settings["event_subscriptions"]
    assert "request_url" not in settings["interactivity"]


def test_manifest_grants_the_bot_scopes(manifest: dict[str, Any]) -> None:
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert scopes >= BOT_SCOPES, f"missing bot scopes: {sorted(BOT_SCOPES - scopes)}"
    assert manifest["features"]["bot_user"]["display_name"] == "agentbridge"
    assert manifest["display_information"]["name"] == "agentbridge"


def test_manifest_subscribes_to_channel_messages(manifest: dict[str, Any]) -> None:
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert set(EVENT_SCOPES) <= events
    for event in events:
        needed = EVENT_SCOPES.get(event)
        assert needed is None or needed in scopes, f"event {event} needs the {needed} scope"


def test_manifest_has_the_agent_command(manifest: dict[str, Any]) -> None:
    commands = {c["command"]: c for c in manifest["features"]["slash_commands"]}
    agent = commands["/agent"]
    assert agent["description"]
    for verb in ("status", "restart SLUG", "stop SLUG", "compact SLUG", "send SLUG TEXT"):
        assert verb in agent["usage_hint"]
    assert "url" not in agent  # Socket Mode delivers commands over the websocket


# -- (d) systemd units ----------------------------------------------------------------------------

UNITS = sorted([*DEPLOY.glob("*.service"), *DEPLOY.glob("*.timer")])


def _unit(path: Path) -> configparser.ConfigParser:
    # systemd allows repeated keys (ExecStartPre=, Environment=); the last one wins here.
    parser = configparser.ConfigParser(
        strict=False, interpolation=None, delimiters=("=",), comment_prefixes=("#", ";")
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    return parser


def test_units_exist() -> None:
    names = {p.name for p in UNITS}
    assert {
        "agentbridge.service",
        "agentbridge-doctor.service",
        "agentbridge-doctor.timer",
    } <= names


@pytest.mark.parametrize("path", [p for p in UNITS if p.suffix == ".service"], ids=lambda p: p.name)
def test_service_units_parse(path: Path) -> None:
    unit = _unit(path)
    assert unit.get("Unit", "Description", fallback="")
    exec_start = unit.get("Service", "ExecStart", fallback="")
    assert exec_start.split()[0].endswith("/agentbridge"), exec_start
    assert "%h/.config/agentbridge/agents.yaml" in exec_start
    assert unit.get("Service", "EnvironmentFile", fallback="").lstrip("-") == (
        "%h/.config/agentbridge/env"
    )


def test_runner_unit() -> None:
    unit = _unit(DEPLOY / "agentbridge.service")
    assert unit.get("Service", "ExecStart").split()[1] == "run"
    # Only the runner is signalled on stop: the agents' tmux server must survive it.
    assert unit.get("Service", "KillMode") == "process"
    assert unit.get("Install", "WantedBy") == "default.target"
    # READY=1 and the watchdog pings come from the runner's loop (bridge/ops/systemd.py).
    assert unit.get("Service", "Type") == "notify"
    assert unit.get("Service", "NotifyAccess") == "main"
    assert int(unit.get("Service", "WatchdogSec")) > 0


def test_doctor_units() -> None:
    service = _unit(DEPLOY / "agentbridge-doctor.service")
    assert service.get("Service", "Type") == "oneshot"
    assert service.get("Service", "ExecStart").split()[1] == "doctor"
    # Started by its timer only: enabling the service itself would run it at every login.
    assert not service.has_section("Install")
    timer = _unit(DEPLOY / "agentbridge-doctor.timer")
    assert timer.get("Timer", "OnCalendar") == "daily"
    assert timer.get("Timer", "Persistent") == "true"
    assert (DEPLOY / timer.get("Timer", "Unit", fallback="agentbridge-doctor.service")).exists()
    assert timer.get("Install", "WantedBy") == "timers.target"


def _analyze_flags(binary: str) -> list[str]:
    """Options of this systemd-analyze that keep verify offline and quiet (older ones lack some)."""
    help_text = subprocess.run(
        [binary, "--help"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    return [f for f in ("--man=no", "--generators=no") if f.split("=")[0] in help_text]


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """``systemd-analyze --user verify`` on copies of the units, against a scratch home.

    ``%h`` resolves to ``$HOME``, so a scratch home with an executable stub at
    ``~/.local/bin/agentbridge`` and the env file makes verify check the units as installed
    (it refuses an ExecStart binary that does not exist). A user manager needs
    ``XDG_RUNTIME_DIR``; a scratch one is enough. verify exits 0 on settings it ignores (an
    unknown key, a bad Type=), so any line it prints about our units is a failure too.
    """
    binary = shutil.which("systemd-analyze")
    if binary is None:
        pytest.skip("systemd-analyze is not installed; the plain parse tests still ran")
    units = tmp_path / "units"
    units.mkdir()
    copies = [Path(shutil.copy(p, units)) for p in UNITS]
    home = tmp_path / "home"
    stub = home / ".local" / "bin" / "agentbridge"
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    config = home / ".config" / "agentbridge"
    config.mkdir(parents=True)
    (config / "env").write_text("AGENTBRIDGE_TMUX_SOCKET=agentbridge\n")
    (config / "agents.yaml").write_text("agents: []\n")
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "SYSTEMD_LOG_LEVEL": "notice",
    }
    argv = [binary, "--user", *_analyze_flags(binary), "verify", *map(str, copies)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)
    output = (result.stdout + result.stderr).strip()
    if "Failed to initialize manager" in output or "Failed to lookup RuntimeDirectory" in output:
        pytest.skip(f"systemd-analyze cannot start a user manager here: {output.splitlines()[0]}")
    about_ours = [
        line
        for line in output.splitlines()
        if str(units) in line or any(c.name in line for c in copies)
    ]
    assert result.returncode == 0 and not about_ours, f"systemd-analyze verify:\n{output}"


# -- (e) the container ----------------------------------------------------------------------------


def test_containerfile_installs_the_pinned_clis() -> None:
    text = (DEPLOY / "Containerfile").read_text(encoding="utf-8")
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert re.search(r"apt-get install[^\n]*\\?\n?[^\n]*\btmux\b", code), "tmux is not installed"
    assert re.search(r"\bnode\b", code) and re.search(r"\bnpm\b", code)
    # The CLI versions are checked in tests/unit/test_pins.py (against bridge/devtools/clis.py).
    assert re.search(r"^FROM python:3\.11-slim-bookworm\b", code, re.M)
    assert re.search(r"^USER agent\b", code, re.M)
    entry = re.search(r"^ENTRYPOINT (\[.*\])", code, re.M)
    assert entry, "no exec-form ENTRYPOINT"
    argv = json.loads(entry.group(1))
    start = argv.index("agentbridge")
    assert argv[start:] == ["agentbridge", "run", "--config", "/config/agents.yaml"]
    volume = re.search(r"^VOLUME (\[.*\])", code, re.M)
    assert volume, "no exec-form VOLUME"
    assert {"/config", "/home/agent/.agentbridge", "/home/agent/.claude", "/home/agent/.codex"} <= (
        set(json.loads(volume.group(1)))
    )
