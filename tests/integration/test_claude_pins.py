"""``doctor`` on both Claude pins (issue 21 item 5): each is a tested version, and each accepts
the runner's exact launch flags with no warning, so the release-gated parts of ``--settings``
(the ``Interrupt`` hook on 2.1.337 only, ``autoCompactWindow`` on both) are what that binary
takes (2.1.332 would warn about, and stop at, an unknown hook event)."""

from __future__ import annotations

import pytest

from bridge.devtools import clis
from bridge.doctor.report import render, run_checks
from runtimes.claude_features import cli_version, has_interrupt_hook
from tests.conftest import Fleet

pytestmark = pytest.mark.integration

CLAUDE_PINS = [n for n, p in clis.PINS.items() if p.package == "@anthropic-ai/claude-code"]


def test_doctor_calls_both_claude_pins_tested_and_their_flags_clean(fleet: Fleet) -> None:
    for pin in CLAUDE_PINS:
        fleet.agent(pin, "claude", pin)
    fleet.write_config()
    checks = run_checks(fleet.config_path, fleet.state_dir, fleet.env)
    report = render(checks, as_json=False)
    versions = {c.agent: c for c in checks if c.name == "cli version"}
    canaries = {c.agent: c for c in checks if c.name == "canary"}
    for pin in CLAUDE_PINS:
        version = clis.PINS[pin].version
        assert versions[pin].detail == f"claude {version}: tested", report
        assert not versions[pin].warning, report
        assert canaries[pin].ok and not canaries[pin].warning, report
    assert versions["claude"].detail == "claude 2.1.337: tested"
    assert has_interrupt_hook(cli_version(str(fleet.bins["claude"])))
    assert not has_interrupt_hook(cli_version(str(fleet.bins["claude332"])))
