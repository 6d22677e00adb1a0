"""Outbound faults through the Slack backend (not the console one): nothing lost, nothing twice.

The real runner (a subprocess), a real Claude Code in tmux, the real SlackBackend on slack_sdk
against the loopback Slack emulator. A writer appends assistant lines to the agent's transcript
much faster than a model would, some of them long enough to be uploaded as files, so faults land
at every stage of intent -> post -> commit, for messages and uploads alike.

- The SIGKILL storm runs with every write answered 0.3 s after it took effect: a proxy between
  the runner and the emulator (:class:`LateAnswers`, test code; the emulator is unchanged) holds
  the answer of each write call, so most kills land between "Slack has it" and "the runner knows".
- 5xx with the look-up failing too: a post and an upload that land but whose answers are lost,
  while ``conversations.history`` fails until the test clears it, across a SIGKILL.
"""

from __future__ import annotations

import asyncio
import random
import re
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from runtimes import agent_session_id
from tests.conftest import Fleet, wait_until
from tests.integration.test_runner import wait_ready

pytestmark = pytest.mark.integration

WRITES = frozenset(
    {
        "chat.postMessage",
        "chat.update",
        "files.completeUploadExternal",
        "files.getUploadURLExternal",
        "reactions.add",
        "conversations.join",
    }
)
LATE = 0.3
KILLS = 14
FILE_EVERY = 40

WRITER = textwrap.dedent(
    """
    import json, sys, time, uuid
    path, count, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    file_every = int(sys.argv[4])
    for i in range(count):
        text = f"fault line {i:05d}"
        if file_every and i % file_every == file_every - 1:
            text = f"fault file {i:05d}\\n" + "long output " * 1100  # > 12,000: uploaded
        line = {"type": "assistant", "uuid": str(uuid.uuid4()), "sessionId": "s",
                "message": {"id": f"msg_fault_{i:05d}", "type": "message", "role": "assistant",
                            "content": [{"type": "text", "text": text}],
                            "usage": {"input_tokens": 3, "output_tokens": 5}}}
        with open(path, "a") as fh:
            fh.write(json.dumps(line) + "\\n")
        time.sleep(delay)
    """
)


class LateAnswers:
    """A loopback HTTP proxy for the Web API that answers write calls :data:`LATE` seconds
    after the emulator applied them (the outside world being slow, not the test waiting)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/") + "/"
        self.loop = asyncio.new_event_loop()
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self._ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self.session = aiohttp.ClientSession()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/api/"

    async def _forward(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        wanted = ("authorization", "content-type")
        headers = {k: v for k, v in request.headers.items() if k.lower() in wanted}
        async with self.session.request(
            request.method,
            self.upstream + method,
            params=request.query,
            data=await request.read(),
            headers=headers,
        ) as upstream:
            body = await upstream.read()
            status = upstream.status
            keep = ("content-type", "retry-after", "x-oauth-scopes")
            out_headers = {k: v for k, v in upstream.headers.items() if k.lower() in keep}
        if method in WRITES:
            await asyncio.sleep(LATE)  # applied upstream already; the answer is late
        return web.Response(body=body, status=status, headers=out_headers)

    def start(self) -> LateAnswers:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            await self.session.close()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture
def slack() -> Iterator[Any]:
    """The emulator, with one of Slack's tiers lifted: the storm starts the runner 15 times in a
    few minutes, each start opening a Socket Mode connection, and ``apps.connections.open`` is
    Tier 1 (a handful a minute; the runner then waits out Retry-After, about a minute each).
    This test is about exactly-once across kills, not tiers (test_slack_tiers_fleet.py is)."""
    from bridge.devtools.slack_emulator import SlackEmulator

    with SlackEmulator(method_limits={"apps.connections.open": None}) as emulator:
        yield emulator


@pytest.fixture
def late(slack: Any) -> Iterator[LateAnswers]:
    proxy = LateAnswers(slack.api_url).start()
    yield proxy
    proxy.stop()


def setup(fleet: Fleet, slack: Any, slug: str) -> tuple[str, Path]:
    channel = slack.add_channel(f"agent-{slug}")
    spec = fleet.agent(slug, "claude", channel=f"#agent-{slug}")
    fleet.use_slack(slack)
    project = re.sub(r"[^A-Za-z0-9]", "-", str(Path(spec["workdir"]).resolve()))
    transcript = Path(
        spec["env"]["CLAUDE_CONFIG_DIR"], "projects", project, f"{agent_session_id(slug)}.jsonl"
    )
    transcript.parent.mkdir(parents=True, exist_ok=True)
    return channel, transcript


def audit(slack: Any, channel: str) -> tuple[list[int], list[int]]:
    """(line numbers in bot messages, in posting order; line numbers of shared uploads)."""
    contents = {f["id"]: f.get("content") or b"" for f in slack.files()}
    lines: list[int] = []
    files: list[int] = []
    for m in slack.messages(channel):
        if not m.get("bot_id"):
            continue
        lines += [int(n) for n in re.findall(r"fault line (\d+)", str(m.get("text", "")))]
        for f in m.get("files") or []:
            head = bytes(contents.get(f["id"]) or b"")[:40].decode(errors="replace")
            files += [int(n) for n in re.findall(r"fault file (\d+)", head)]
    return lines, files


def everything(slack: Any, channel: str) -> list[int]:
    lines, files = audit(slack, channel)
    return lines + files


def mirrored_posts(slack: Any) -> list[Any]:
    return [c for c in slack.calls("chat.postMessage") if "fault line" in str(c[1].get("text"))]


def check(slack: Any, channel: str, total: int) -> tuple[int, int]:
    """Assert every line arrived exactly once (text lines in order); returns (lost, dup)."""
    lines, files = audit(slack, channel)
    got = lines + files
    expected = set(range(total))
    lost = sorted(expected - set(got))
    dup = len(got) - len(set(got))
    assert dup == 0, f"{dup} duplicated: {sorted(n for n in set(got) if got.count(n) > 1)[:10]}"
    assert lost == [], f"{len(lost)} lost: {lost[:10]}"
    assert lines == sorted(lines), "order not kept"
    return len(lost), dup


def test_sigkill_storm_with_late_answers_through_slack(
    fleet: Fleet, slack: Any, late: LateAnswers
) -> None:
    channel, transcript = setup(fleet, slack, "fs")
    fleet.slack_env["SLACK_API_URL"] = late.url
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, "fs", "claude")  # Claude refuses a --session-id whose file exists
    total = 360
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(transcript), str(total), "0.03", str(FILE_EVERY)]
    )
    rng = random.Random(20261128)
    try:
        for round_ in range(KILLS):
            wait_until(
                lambda r=round_: fleet.log_text().count("runner: started") == r + 1, 90, "runner up"
            )
            seen = len(slack.calls("chat.postMessage")) + len(
                slack.calls("files.completeUploadExternal")
            )
            # Kill while a write is in flight: after the next write call reached Slack, at a
            # random point of the 0.3 s before its answer.
            wait_until(
                lambda s=seen: (
                    len(slack.calls("chat.postMessage"))
                    + len(slack.calls("files.completeUploadExternal"))
                    > s
                    or writer.poll() is not None
                ),
                90,
                "a write in flight",
                interval=rng.uniform(0.01, LATE),
            )
            assert fleet.runner is not None
            fleet.runner.send_signal(signal.SIGKILL)
            fleet.runner.wait(timeout=30)
            fleet.runner = None
            fleet.start_runner()
    finally:
        writer.wait(timeout=180)
    wait_until(lambda: len(set(everything(slack, channel))) >= total, 240, "every line mirrored")
    lost, dup = check(slack, channel, total)
    # The storm is only a test if kills landed between "Slack has it" and "the runner knows".
    found = [int(n) for n in re.findall(r"\((\d+) had arrived\)", fleet.log_text())]
    assert sum(found) > 0, "no kill landed while an answer was late"
    sys.stderr.write(
        f"late-answer storm: {KILLS} kills, {sum(found)} posts found again after a kill,"
        f" lost={lost} dup={dup}\n"
    )
    status = fleet.status()["fs"]
    assert status["skipped_posts"] == 0 and status["bad_lines"] == 0


def test_5xx_with_the_lookup_failing_too_and_a_lost_upload_answer(fleet: Fleet, slack: Any) -> None:
    channel, transcript = setup(fleet, slack, "fl")
    fleet.write_config()
    fleet.start_runner()
    wait_ready(fleet, "fl", "claude")
    # A post and an upload take effect, their answers are lost, and every look-up fails.
    slack.inject("chat.postMessage", status=503, after=True)
    slack.inject("files.completeUploadExternal", status=503, after=True)
    slack.inject("conversations.history", status=500, times=None)
    total = 4
    subprocess.run(
        [sys.executable, "-c", WRITER, str(transcript), "2", "0", "2"], check=True
    )  # line 0 (a message), line 1 (an upload)
    wait_until(lambda: len(set(everything(slack, channel))) == 1, 60, "the post landed")
    wait_until(
        lambda: (
            "chat_postMessage failed" in fleet.log_text()
            and len(slack.calls("conversations.history")) >= 2
        ),
        60,
        "the runner looking its post up, and failing",
    )
    # The runner dies not knowing; the next one cannot look anything up either at first.
    assert fleet.runner is not None
    fleet.runner.send_signal(signal.SIGKILL)
    fleet.runner.wait(timeout=30)
    fleet.runner = None
    looked = len(slack.calls("conversations.history"))
    fleet.start_runner()
    wait_until(
        lambda: len(slack.calls("conversations.history")) > looked + 3, 60, "look-ups failing"
    )
    # Nothing was posted again while the outcome was unknown.
    assert len(mirrored_posts(slack)) == 1
    slack.clear_faults()
    wait_until(lambda: len(set(everything(slack, channel))) >= 2, 120, "both delivered")
    # The upload: its answer was lost too; found again by its name, never uploaded twice.
    wait_until(lambda: len(audit(slack, channel)[1]) >= 1, 60, "the upload")
    subprocess.run(  # and the mirror carries on afterwards
        [sys.executable, "-c", WRITER.replace("range(count)", "range(2, count)"), str(transcript),
         str(total), "0", "0"],
        check=True,
    )  # fmt: skip
    wait_until(lambda: len(set(everything(slack, channel))) >= total, 60, "all lines")
    lost, dup = check(slack, channel, total)
    sys.stderr.write(f"5xx + failing look-up + lost upload answer: lost={lost} dup={dup}\n")
