"""End to end: Slack emulator -> runner -> real CLI in tmux (fake model) -> transcript -> Slack."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Fleet, wait_until
from tests.integration.test_runner import wait_ready

pytestmark = pytest.mark.e2e


def bot_texts(slack: Any, channel: str, *, top_level: bool | None = None) -> list[str]:
    out = []
    for m in slack.messages(channel):
        if not m.get("bot_id"):
            continue
        is_top = not m.get("thread_ts") or m.get("thread_ts") == m.get("ts")
        if top_level is None or top_level == is_top:
            out.append(str(m.get("text", "")))
    return out


def thread_texts(slack: Any, channel: str, ts: str) -> list[str]:
    return [str(m.get("text", "")) for m in slack.thread(channel, ts)[1:] if m.get("bot_id")]


def setup_agent(
    fleet: Fleet, slack: Any, slug: str, runtime: str, **extra: Any
) -> tuple[str, str, str]:
    alice = slack.add_user("alice", "Alice")
    channel = slack.add_channel(f"agent-{slug}", members=[alice])
    fleet.agent(slug, runtime, channel=f"#agent-{slug}", allowed_users=[alice], **extra)
    fleet.use_slack(slack)
    return alice, channel, f"#agent-{slug}"


@pytest.mark.parametrize("runtime", ["claude", "codex"])
def test_slack_steering_threads_reactions_echo_and_typed_prompts(
    fleet: Fleet, slack: Any, runtime: str
) -> None:
    slug = f"sl-{runtime}"
    alice, channel, _ = setup_agent(fleet, slack, slug, runtime)
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, slug, runtime)
    ts = slack.post_as_user(alice, channel, "hello from slack")
    wait_until(
        lambda: any("ack: hello from slack" in t for t in thread_texts(slack, channel, ts)),
        90,
        "the answer in the message's thread",
    )
    wait_until(
        lambda: {"eyes", "white_check_mark"} <= set(slack.reactions(channel, ts)),
        30,
        "👀 then ✅ on the message",
    )
    # Echo suppression: the person's own prompt is not mirrored back.
    assert not any("hello from slack" in t and "ack:" not in t for t in bot_texts(slack, channel))
    # No status line is left in the thread once the turn is over: a short turn never gets one,
    # a long one's is deleted at the end, so nothing sits above the answer (turnstatus.py).
    wait_until(
        lambda: (
            not any("working…" in t or "done, idle" in t for t in thread_texts(slack, channel, ts))
        ),
        60,
        "no status line left in the thread",
    )
    # A prompt typed in the tmux pane is mirrored top-level with a header.
    fleet.tmux("send-keys", "-t", f"={slug}:", "-l", "typed in tmux")
    # Codex reads an Enter that follows fast input as part of it: wait for the echo first.
    wait_until(lambda: "typed in tmux" in fleet.capture(slug), 30, "the typed text on screen")
    fleet.tmux("send-keys", "-t", f"={slug}:", "Enter")
    wait_until(
        lambda: any(
            "Typed in the terminal" in t and "typed in tmux" in t
            for t in bot_texts(slack, channel, top_level=True)
        ),
        90,
        "typed prompt mirrored top-level",
    )
    wait_until(
        lambda: any("ack: typed in tmux" in t for t in bot_texts(slack, channel, top_level=True)),
        90,
        "its answer top-level",
    )
    # Each thing once.
    texts = bot_texts(slack, channel)
    assert sum("ack: hello from slack" in t for t in texts) == 1
    assert sum("ack: typed in tmux" in t for t in texts) == 1


HOSTILE = [
    ("\x1b[31mred\x1b[0m text", "[31mred[0m text"),
    ("before\x1b[201~after Enter", "before[201~after Enter"),
    ("$(touch /tmp/agentbridge-pwned) and `id`", "$(touch /tmp/agentbridge-pwned) and `id`"),
    ("multi\nline\r\nmessage", "multi line message"),
    ("unicode: héllo ✓ 日本語 🚀", "unicode: héllo ✓ 日本語 🚀"),
    ("ctrl\x03c\x04d\x1a", "ctrlcd"),
]


def test_hostile_input_arrives_literally_and_strangers_are_refused(
    fleet: Fleet, slack: Any
) -> None:
    alice, channel, _ = setup_agent(fleet, slack, "hx", "claude")
    mallory = slack.add_user("mallory", "Mallory")
    slack.join(mallory, channel)
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, "hx", "claude")
    # An unauthorized user: a private refusal, nothing reaches the agent.
    slack.post_as_user(mallory, channel, "rm -rf everything")
    wait_until(lambda: any(e.get("user") == mallory for e in slack.ephemerals()), 30, "refusal")
    for raw, expected in HOSTILE:
        ts = slack.post_as_user(alice, channel, raw)
        wait_until(
            lambda e=expected: any(e in " ".join(p.split()) for p in fleet.anthropic.prompts()),
            60,
            f"{expected!r} at the model",
        )
        wait_until(lambda t=ts: "white_check_mark" in slack.reactions(channel, t), 30, "✅")
    # Keystroke injection: were the paste-end sequence or a carriage return let through, the rest
    # would be typed into Claude's prompt, and `!` there runs a shell command: the marker file.
    marker = fleet.root / "pwned-by-paste"
    injections = [
        (f"pi1\x1b[201~\r!touch {marker}\r", f"pi1[201~ !touch {marker}"),
        (f"pi2\r!touch {marker}\r", f"pi2 !touch {marker}"),
        (f"pi3\x1b\r\x1b[200~!touch {marker}\x1b[201~\r", f"pi3 [200~!touch {marker}[201~"),
    ]
    for raw, expected in injections:
        ts = slack.post_as_user(alice, channel, raw)
        wait_until(
            lambda e=expected: any(e in " ".join(p.split()) for p in fleet.anthropic.prompts()),
            60,
            f"{expected!r} at the model, as one literal prompt",
        )
        wait_until(lambda t=ts: "white_check_mark" in slack.reactions(channel, t), 30, "✅")
    assert not marker.exists(), "a pasted text was typed as keystrokes"
    big = "x" * 100_000
    slack.post_as_user(alice, channel, big)
    wait_until(
        lambda: any("too long to paste" in p for p in fleet.anthropic.prompts()),
        60,
        "a file pointer for 100k characters",
    )
    pointer = next(p for p in fleet.anthropic.prompts() if "too long to paste" in p)
    path = Path(pointer.split("Read it from ")[1].split(" and act on it")[0])
    assert big in path.read_text()
    only_controls = slack.post_as_user(alice, channel, "\x1b\x1b\x07")
    wait_until(lambda: "warning" in slack.reactions(channel, only_controls), 30, "⚠️")
    assert not (Path("/tmp/agentbridge-pwned")).exists()
    assert not any("rm -rf everything" in p for p in fleet.anthropic.prompts())
    assert not any("\x1b" in p for p in fleet.anthropic.prompts())


def test_slash_command(fleet: Fleet, slack: Any) -> None:
    alice, channel, _ = setup_agent(fleet, slack, "cmd", "claude")
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, "cmd", "claude")
    slack.slash_command(alice, channel, "/agent", "status")
    wait_until(lambda: any("`cmd`" in str(r) for r in slack.responses()), 30, "status reply")
    slack.slash_command(alice, channel, "/agent", "send cmd via the slash command")
    wait_until(lambda: "via the slash command" in fleet.anthropic.prompts(), 60, "sent")
    old_pid = fleet.status()["cmd"]["pid"]
    slack.slash_command(alice, channel, "/agent", "restart cmd")
    fleet.wait_relaunched("cmd", old_pid, what="restarted")
    slack.slash_command(alice, channel, "/agent", "stop cmd")
    wait_until(lambda: fleet.status()["cmd"]["state"] == "stopped", 30, "stopped")
    assert not fleet.status()["cmd"]["alive"]


def test_faults_429_5xx_and_dropped_sockets_lose_and_duplicate_nothing(
    fleet: Fleet, slack: Any
) -> None:
    from tests.integration.test_mirror_faults import WRITER

    alice, channel, _ = setup_agent(fleet, slack, "fz", "claude")
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, "fz", "claude")  # Claude refuses a --session-id whose file exists
    spec = fleet.agents_by_slug("fz")
    import re
    import sys

    from runtimes import agent_session_id

    project = re.sub(r"[^A-Za-z0-9]", "-", str(Path(spec["workdir"]).resolve()))
    transcript = Path(
        spec["env"]["CLAUDE_CONFIG_DIR"], "projects", project, f"{agent_session_id('fz')}.jsonl"
    )
    transcript.parent.mkdir(parents=True, exist_ok=True)
    slack.inject("chat.postMessage", status=429, retry_after=1, times=4)
    slack.inject("chat.postMessage", status=503, times=2, after=True)  # posted, answer lost
    slack.inject("chat.postMessage", status=500, times=2)
    slack.inject("chat.postMessage", status=0, times=1, after=True)  # posted, then reset
    total = 120
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(transcript), str(total), "0.03"])
    try:
        wait_until(lambda: len(lines(slack, channel)) >= 20, 90, "some lines through")
        slack.drop_sockets()
        ts = slack.post_as_user(alice, channel, "steer after the drop")
        wait_until(
            lambda: "steer after the drop" in fleet.anthropic.prompts(),
            60,
            "inbound works after reconnect",
        )
        wait_until(lambda: "eyes" in slack.reactions(channel, ts), 60, "the receipt reaction")
    finally:
        writer.wait(timeout=120)
    wait_until(lambda: len(set(lines(slack, channel))) >= total, 120, "all lines mirrored")
    got = lines(slack, channel)
    assert len(got) == len(set(got)), "duplicates"
    assert got == sorted(got), "order"
    assert set(got) == set(range(total))


def lines(slack: Any, channel: str) -> list[int]:
    import re

    out: list[int] = []
    for text in bot_texts(slack, channel):
        out += [int(n) for n in re.findall(r"fault line (\d+)", text)]
    return out
