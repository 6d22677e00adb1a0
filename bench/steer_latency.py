"""Slack message received -> prompt confirmed by the runtime, through the whole real stack.

The loopback Slack emulator, the real runner (``agentbridge run`` as a subprocess, SlackBackend
over Socket Mode), a real Claude Code in tmux against the fake Anthropic server. Each probe is a
human message posted in the agent's channel; it counts as confirmed when the runner adds ✅ to
it, which it does when Claude's UserPromptSubmit hook (or the transcript) reports the prompt.
Probes go one at a time, each once the agent is idle again.

Run: ``python bench/steer_latency.py [--messages 20]``; last line: ``p50_ms= p90_ms= max_ms=``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _slack_claude import claude_over_slack, wait


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20)
    args = parser.parse_args()
    with claude_over_slack("ab-steer-bench-") as bench:
        slack, user, channel = bench.slack, bench.user, bench.channel
        latencies = []
        for i in range(args.messages):
            before = bench.turns_ended()
            t0 = time.monotonic()
            ts = slack.post_as_user(user, channel, f"latency probe {i}")
            wait(
                lambda t=ts: "white_check_mark" in slack.reactions(channel, t),
                60,
                f"probe {i} confirmed",
            )
            latencies.append((time.monotonic() - t0) * 1000)
            bench.wait_turn_after(before, f"probe {i}'s turn to end")
    latencies.sort()
    p90 = latencies[max(0, int(len(latencies) * 0.9) - 1)]
    print(f"probes (ms): {' '.join(f'{x:.0f}' for x in latencies)}")
    print(
        f"p50_ms={statistics.median(latencies):.0f} p90_ms={p90:.0f} "
        f"max_ms={latencies[-1]:.0f} messages={len(latencies)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
