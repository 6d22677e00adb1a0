"""``doctor`` and ``status`` judge access by the chat backend the runner really uses (issue
20.19): the demo's runner has the emulator's tokens in its own environment only, so a
``doctor`` in another shell, without tokens, must read the runner's ``runner.json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.app import runner_files
from bridge.config.model import load_config
from bridge.doctor.access import check_access
from bridge.doctor.slack import uses_slack
from tests.unit.test_doctor import write_config


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    agents = [{"slug": "a1", "workdir": "w", "allowed_users": ["U0001"]}]
    return write_config(tmp_path, agents)


def details(config_path: Path, environ: dict[str, str], state: Path) -> list[str]:
    config = load_config(config_path, {"HOME": str(state)})
    return [c.detail for c in check_access(config, environ, state)]


def test_a_runner_on_slack_is_judged_as_slack(tmp_path: Path, config_path: Path) -> None:
    runner_files.write_runner_info(tmp_path, config_path, None, "slack")
    assert json.loads((tmp_path / "runner.json").read_text())["chat"] == "slack"
    assert details(config_path, {}, tmp_path) == ["allowlist: 1 Slack user may steer it"]
    assert uses_slack({}, tmp_path)


def test_a_console_runner_is_local(tmp_path: Path, config_path: Path) -> None:
    runner_files.write_runner_info(tmp_path, config_path, None, "console")
    assert details(config_path, {}, tmp_path)[0].startswith("local: console backend")
    # this shell's tokens still say Slack (doctor run in the runner's environment)
    tokens = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}
    assert details(config_path, tokens, tmp_path)[0].startswith("allowlist")


def test_no_runner_and_an_older_runner_json(tmp_path: Path, config_path: Path) -> None:
    assert not uses_slack({}, tmp_path)
    old = {"pid": 1, "slack_api_url": "http://127.0.0.1:8765/api/"}  # before "chat" existed
    (tmp_path / "runner.json").write_text(json.dumps(old))
    assert uses_slack({}, tmp_path)
