"""A long approval is cut to fit Slack's limits; the cut must never split a secret into a prefix
that the outbound redactor no longer recognises (issue 20 item 4, the cut before the chokepoint)."""

from __future__ import annotations

import json

import pytest

from bridge.answers.blocks import approval_blocks, fallback_text
from bridge.render.redact import redact
from runtimes.asks import Ask

TOKEN = "sk-ant-api03-" + "Q" * 40
HEAD = "echo "  # the token stands alone: no header or assignment rule around it to catch it


@pytest.mark.parametrize("shown_chars", [8, 12, 15, 20])
@pytest.mark.parametrize("limit", [2500, 300])  # the message's code block, the fallback text
def test_a_cut_through_a_token_leaves_no_part_of_it(limit: int, shown_chars: int) -> None:
    pad = limit - 1 - len(HEAD) - shown_chars  # the cut leaves `shown_chars` of the token
    command = HEAD + "x" * pad + " " + TOKEN + " done"
    ask = Ask(kind="approval", key="k", event="PermissionRequest", tool="Bash", command=command)
    shown = json.dumps(approval_blocks("a", 1, ask)) + fallback_text("a", ask)
    # what the chokepoint would let through: the shown text, redacted once more
    assert "sk-ant-a" not in redact(shown)
