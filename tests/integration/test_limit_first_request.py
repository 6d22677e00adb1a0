"""The real Claude at a usage limit, hit at a turn's first request and in the middle of one (after
a tool call), with and without ``retry-after``, on every pinned Claude (issue 20 item 14).

Without ``retry-after`` Claude retries by itself and shows ``✻ 5-hour limit reached · retrying in
7s (8:58am) · attempt 5/10`` (docs/cli-signals.md, section a): that clock time is the only reset
time it gives. ``CLAUDE_CODE_MAX_RETRIES`` (a real Claude setting) makes it give up after a few
seconds instead of ~3.5 minutes, so the runner has to act on what the screen said while Claude
retried: the limit post names that reset (not the fallback), and the continue goes in right after
it. With ``retry-after`` Claude waits out a limit up to about a minute away by itself and gives
up at once on a later one, naming no reset: the fallback wait applies. The limits are 40 s (90 s
with ``retry-after``) away, so every test ends with the continued turn answered.
"""

from __future__ import annotations

from typing import Any

import pytest

from bridge.devtools import clis
from tests.conftest import Fleet, wait_until
from tests.integration.test_runner import wait_ready
from tests.integration.test_watchdog import limited_requests, posts

pytestmark = pytest.mark.integration

CLAUDES = [n for n, p in clis.PINS.items() if p.package == "@anthropic-ai/claude-code"]


def answered_after(server: Any, since: float) -> bool:
    """A main request after ``since`` got a real answer (the continued turn went through)."""
    return any(
        r.kind in ("turn", "tool_result")
        and (r.reply or {}).get("status") != 429
        and r.time > since
        for r in server.requests
    )


@pytest.mark.parametrize("retry_after", [False, True], ids=["retrying", "retry-after"])
@pytest.mark.parametrize("where", ["first-request", "after-a-tool-call"])
@pytest.mark.parametrize("version", CLAUDES)
def test_claude_limit_is_read_and_the_turn_continued(
    fleet: Fleet, version: str, where: str, retry_after: bool
) -> None:
    slug = f"lim-{where[:5]}"
    # Past the window, the fallback (the only reset a retry-after 429 leaves) is 105 s.
    limit_s = 90 if retry_after else 40
    watchdog = {"limit_fallback_minutes": 1.75, "limit_grace_seconds": 1}
    spec = fleet.agent(slug, "claude", version=version, watchdog=watchdog)
    if not retry_after:  # gives up ~15 s in, not ~3.5 min (with it set, Claude waits out a
        spec["env"]["CLAUDE_CODE_MAX_RETRIES"] = "4"  # retry-after instead of giving up)
    fleet.anthropic.limit_retry_after = retry_after
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, slug, "claude")
    go = fleet.root / "work" / slug / "go"
    if where == "first-request":
        fleet.cli("send", slug, f"a long job LIMIT:{limit_s}")
    else:
        fleet.cli("send", slug, "RUN:until [ -e go ]; do sleep 0.2; done; echo tool-done")
        wait_until(
            lambda: any((r.reply or {}).get("command") for r in fleet.anthropic.requests),
            90,
            "the tool call",
        )
        fleet.anthropic.limit(limit_s)  # the request carrying the tool's result is limited
        go.touch()
    wait_until(lambda: limited_requests(fleet.anthropic), 90, "the first limited request")
    reset = next(
        float(r.reply["limited_until"])
        for r in fleet.anthropic.requests
        if (r.reply or {}).get("status") == 429
    )  # the exact reset the 429's headers gave
    wait_until(lambda: posts(fleet, slug, "limit"), 120, "the limit post")
    (post,) = posts(fleet, slug, "limit")
    status = fleet.status()[slug]
    assert status["limited_until"] is not None
    if retry_after:  # nothing names the reset: the fallback, and the post says so
        assert "no reset time" in post
    else:  # the retry line on screen named it: its minute's end, not the fallback's guess
        assert "resets at" in post and "no reset time" not in post, post
        assert reset - 1 <= status["limited_until"] <= reset + 61  # to its minute's end
    wait_until(
        lambda: answered_after(fleet.anthropic, reset),
        150,
        "the continued turn answered",
    )
    wait_until(lambda: fleet.status()[slug]["activity"] == "idle", 120, "idle at the end")
    assert fleet.status()[slug]["limited_until"] is None
    assert len(posts(fleet, slug, "limit")) == 1
    assert not posts(fleet, slug, "limit_again")  # the continue did not come too early
    prompts = [r.prompt or "" for r in fleet.anthropic.requests if r.kind == "turn"]
    assert any("continue" in p for p in prompts)
