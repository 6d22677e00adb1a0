"""Fixtures the unit tests share (the isolation every test gets is in tests/conftest.py, which
also clears the proxy variables slack_sdk would otherwise use for loopback calls)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge.devtools.slack_emulator import SlackEmulator


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    """A Slack emulator without the posting rate limit (tests of what it answers, not when)."""
    with SlackEmulator(rate_limit=None) as emulator:
        yield emulator
