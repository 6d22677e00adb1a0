"""``agentbridge doctor`` reads the scopes Slack granted the bot token (``auth.test``'s
``x-oauth-scopes`` header) and names each missing one with the feature it breaks."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bridge.devtools.slack_emulator import SlackEmulator
from bridge.doctor.check import Check
from bridge.doctor.slack import check_scopes, check_slack


def scope_check(emu: SlackEmulator, bot_token: str) -> Check:
    environ = {
        "SLACK_BOT_TOKEN": bot_token,
        "SLACK_APP_TOKEN": emu.app_token,
        "SLACK_API_URL": emu.api_url,
    }
    [found] = [c for c in check_slack(None, environ) if c.name == "slack scopes"]
    return found


def test_the_manifests_scopes_pass(emu: SlackEmulator) -> None:
    found = scope_check(emu, emu.bot_token)
    assert found.ok and not found.warning and "has all" in found.detail


def test_a_missing_scope_is_named_with_what_it_breaks(emu: SlackEmulator) -> None:
    token = emu.bot_token_with(emu.bot_scopes - {"files:read", "reactions:write"})
    found = scope_check(emu, token)
    assert not found.ok
    assert "files:read (downloading files people share with a steering message)" in found.detail
    assert "reactions:write (the receipt reactions on steering messages)" in found.detail
    assert "reinstall" in found.detail


def test_no_header_is_a_warning_not_a_failure() -> None:
    found = check_scopes({"Content-Type": "application/json"})
    assert found.ok and found.warning and "x-oauth-scopes" in found.detail
    assert not check_scopes({"x-oauth-scopes": "chat:write"}).ok


def test_the_runner_logs_missing_scopes_at_start(
    emu: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """The real SlackBackend, started against the emulator with a token lacking files:read,
    says so in the runner's log at once (not when the first file is shared)."""
    from bridge.chat.slack.backend import SlackBackend

    async def start_and_close(token: str) -> None:
        backend = SlackBackend(token, emu.app_token, emu.api_url, min_interval=0)
        await backend.start()
        await backend.close()

    with caplog.at_level(logging.WARNING, "agentbridge.slack"):
        asyncio.run(start_and_close(emu.bot_token))
        assert "lacks" not in caplog.text
        asyncio.run(start_and_close(emu.bot_token_with(emu.bot_scopes - {"files:read"})))
    assert "the bot token lacks files:read (downloading files people share" in caplog.text
