"""Click on a question's button in Slack -> the tool result reaches the model, end to end.

The loopback Slack emulator, the real runner (``agentbridge run`` as a subprocess, SlackBackend
over Socket Mode), a real Claude Code in tmux against the fake Anthropic server. Each probe is a
prompt carrying the fake model's ``ASK:`` directive: Claude calls ``AskUserQuestion``, the
runner's blocking PreToolUse hook posts the question as buttons, the bench clicks one; the probe
ends when the fake model receives the request carrying ``Your questions have been answered``
(the hook's answer, turned into the tool result by Claude). Issue 12 asks for under 2 s.

Run: ``python bench/question_latency.py [--questions 10]``; last line: ``p50_ms= p90_ms= max_ms=``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from _slack_claude import claude_over_slack, wait


def button(slack: Any, channel: str) -> tuple[str, str] | None:
    """(ts, action_id) of the "yes" button of a question still open, if any."""
    for m in reversed(slack.messages(channel)):
        for block in m.get("blocks") or []:
            accessory = block.get("accessory") or {}
            if accessory.get("value") == "yes" and accessory["action_id"].startswith("q:"):
                return str(m["ts"]), str(accessory["action_id"])
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=10)
    args = parser.parse_args()
    with claude_over_slack("ab-question-bench-") as bench:
        slack, model, user, channel = bench.slack, bench.model, bench.user, bench.channel
        latencies = []
        answered = "Your questions have been answered"
        for i in range(args.questions):
            before = bench.turns_ended()
            slack.post_as_user(user, channel, f"probe {i} ASK:Probe {i}?|yes|no")
            message = wait(lambda: button(slack, channel), 90, f"probe {i}'s buttons")
            seen = sum(answered in json.dumps(r.body) for r in model.requests)
            t0 = time.monotonic()
            slack.click(user, channel, message[0], message[1], "yes")
            wait(
                lambda s=seen: sum(answered in json.dumps(r.body) for r in model.requests) > s,
                60,
                f"probe {i}'s answer at the model",
            )
            latencies.append((time.monotonic() - t0) * 1000)
            bench.wait_turn_after(before, f"probe {i}'s turn to end")
    latencies.sort()
    p90 = latencies[max(0, int(len(latencies) * 0.9) - 1)]
    print(f"probes (ms): {' '.join(f'{x:.0f}' for x in latencies)}")
    print(
        f"p50_ms={statistics.median(latencies):.0f} p90_ms={p90:.0f} "
        f"max_ms={latencies[-1]:.0f} questions={len(latencies)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
