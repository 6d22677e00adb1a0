"""``agentbridge doctor`` checks without the real CLIs: fake binaries, a fake Slack, temp dirs.

The doctor is read by a person fixing a broken fleet, so the tests pin that each problem comes
out as its own failing line naming the agent, and that healthy parts stay quiet.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from bridge.config.model import load_config
from bridge.doctor import basics, report
from bridge.doctor import hooks as doctor_hooks
from bridge.doctor.check import Check
from bridge.doctor.slack import check_slack
from bridge.store.db import Store

#: What the real claude prints once every flag is accepted (see runtimes.canary).
CLAUDE_ACCEPTED = (
    "Error: Input must be provided either through stdin or as a prompt argument when using --print"
)


def script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def write_config(root: Path, agents: list[dict[str, Any]]) -> Path:
    for agent in agents:
        (root / agent["workdir"]).mkdir(parents=True, exist_ok=True)
    path = root / "agents.yaml"
    path.write_text(yaml.safe_dump({"agents": agents}, sort_keys=False))
    return path


def failed(checks: list[Check], name: str | None = None) -> list[Check]:
    return [c for c in checks if not c.ok and (name is None or c.name == name)]


# -- tmux, config, binaries, canaries -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "version"),
    [("tmux 3.3a", (3, 3)), ("tmux next-3.5", (3, 5)), ("tmux 3.1c", (3, 1)), ("tmux", None)],
)
def test_tmux_version(text: str, version: tuple[int, int] | None) -> None:
    assert basics.tmux_version(text) == version


def test_tmux_missing_or_too_old(tmp_path: Path) -> None:
    assert not basics.check_tmux({"PATH": str(tmp_path / "empty")}).ok
    script(tmp_path / "old" / "tmux", 'echo "tmux 3.1c"\n')
    old = basics.check_tmux({"PATH": str(tmp_path / "old")})
    assert not old.ok and "3.2 is required" in old.detail
    script(tmp_path / "new" / "tmux", 'echo "tmux 3.4"\n')
    assert basics.check_tmux({"PATH": str(tmp_path / "new")}).ok


def test_bad_config_gives_one_failed_check_per_error(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text("agents:\n  - slug: Bad Slug\n    workdir: nowhere\n    colour: red\n")
    checks = report.run_checks(path, tmp_path / "state", dict(os.environ))
    errors = failed(checks, "config")
    assert len(errors) >= 3, errors
    assert any("colour" in c.detail for c in errors)
    assert any("nowhere" in c.detail for c in errors)
    assert not [c for c in checks if c.name in ("binary", "canary")]
    assert report.exit_code(checks) == 1


def test_missing_binaries_fail_per_agent_and_skip_the_canary(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        [
            {"slug": "gone", "workdir": "w", "bin": str(tmp_path / "no" / "claude")},
            {"slug": "unlisted", "runtime": "codex", "workdir": "w", "bin": "no-such-cli"},
            {"slug": "off", "workdir": "w", "bin": "/nope", "enabled": False},
        ],
    )
    environ = {"PATH": str(tmp_path / "empty"), "HOME": str(tmp_path)}
    checks, usable = basics.check_binaries(load_config(path, environ), environ)
    assert usable == []
    assert {(c.agent, c.ok) for c in checks} == {("gone", False), ("unlisted", False)}
    by_agent = {c.agent: c.detail for c in checks}
    assert "does not exist" in by_agent["gone"]
    assert by_agent["unlisted"] == "'no-such-cli' not found on the agent's PATH"


FAKE_CLAUDE = f"""
[ "$1" = "--version" ] && {{ echo "9.9.9 (Claude Code)"; exit 0; }}
[ "$(pwd)" = "$EXPECT_CWD" ] || {{ echo "Error: wrong cwd $(pwd)" >&2; exit 1; }}
[ -n "$KANBAN_SESSION_ID" ] || {{ echo "Error: no KANBAN_SESSION_ID" >&2; exit 1; }}
[ "$1" = "--print" ] || {{ echo "Error: not print mode" >&2; exit 1; }}
for a in "$@"; do
  case "$a" in --definitely-not-a-flag) echo "error: unknown option '$a'" >&2; exit 1;; esac
done
echo "{CLAUDE_ACCEPTED}" >&2
exit 1
"""

FAKE_CODEX = """
[ "$1" = "--version" ] && { echo "codex-cli 7.7.7"; exit 0; }
[ -d "$CODEX_HOME" ] || { echo "Error: failed to resolve CODEX_HOME" >&2; exit 1; }
for a in "$@"; do
  case "$a" in --nope) echo "error: unexpected argument '$a' found" >&2; exit 2;; esac
done
eval last=\\${$#}
[ "$last" = "list" ] && exit 0
exit 3
"""


def test_canary_runs_the_launch_argv_in_the_workdir_and_names_the_rejected_flag(
    tmp_path: Path,
) -> None:
    claude = script(tmp_path / "bin" / "claude", FAKE_CLAUDE)
    script(tmp_path / "bin" / "codex", FAKE_CODEX)
    work = tmp_path / "w"

    def claude_agent(slug: str, args: list[str]) -> dict[str, Any]:
        env = {"CLAUDE_CONFIG_DIR": str(tmp_path / slug), "EXPECT_CWD": str(work.resolve())}
        return {"slug": slug, "workdir": "w", "bin": str(claude), "env": env, "args": args}

    def codex_agent(slug: str, args: list[str]) -> dict[str, Any]:
        env = {"CODEX_HOME": str(tmp_path / slug / "codex")}
        return {"slug": slug, "runtime": "codex", "workdir": "w", "bin": "codex", "env": env,
                "args": args}  # fmt: skip

    path = write_config(
        tmp_path,
        [
            claude_agent("good-claude", []),
            claude_agent("bad-claude", ["--definitely-not-a-flag"]),
            codex_agent("good-codex", ["-m", "x"]),
            codex_agent("bad-codex", ["--nope"]),
        ],
    )
    environ = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    checks = report.run_checks(path, tmp_path / "state", environ)
    canaries = {c.agent: c for c in checks if c.name == "canary"}
    assert canaries["good-claude"].ok, canaries
    assert canaries["good-codex"].ok, canaries
    assert not canaries["bad-claude"].ok
    assert "unknown option '--definitely-not-a-flag'" in canaries["bad-claude"].detail
    assert not canaries["bad-codex"].ok and "'--nope'" in canaries["bad-codex"].detail
    versions = {c.agent: c.detail for c in checks if c.name == "binary"}
    assert versions["good-claude"].startswith("claude 9.9.9")
    assert versions["good-codex"].startswith("codex 7.7.7")
    assert report.exit_code(checks) == 1


# -- hooks.log, hook command, state dir ----------------------------------------------------------


def test_hooks_log_counts_recent_failures_per_agent(tmp_path: Path) -> None:
    now = 1_800_000_000.0
    lines = [
        {"ts": now - 3 * 86400, "slug": "old", "event": "Stop", "error": "ancient"},
        {"ts": now - 7200, "slug": "web", "event": "Stop", "error": "first"},
        "not json at all",
        {"slug": "web", "event": "Stop", "error": "no timestamp"},
        {"ts": now - 600, "slug": "web", "event": "PreToolUse", "error": "ConnectionRefusedError"},
    ]
    (tmp_path / "hooks.log").write_text(
        "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    )
    checks = doctor_hooks.check_hooks_log(tmp_path, now=now)
    assert [(c.agent, c.ok) for c in checks] == [("web", False)]
    assert checks[0].detail == (
        "2 hook failures in the last 24 h; last 10 min ago (PreToolUse): ConnectionRefusedError"
    )
    quiet = doctor_hooks.check_hooks_log(tmp_path / "none", now=now)
    assert [c.ok for c in quiet] == [True]


def test_hook_command_must_be_this_installation(tmp_path: Path) -> None:
    environ = dict(os.environ)
    ours = doctor_hooks.check_hook_command(
        None, tmp_path, environ, command=f"{sys.executable} -m bridge hook"
    )
    assert ours[0].ok, ours
    missing = doctor_hooks.check_hook_command(None, tmp_path, environ, f"{tmp_path}/nope hook")
    assert not missing[0].ok and "not an executable file" in missing[0].detail
    other_python = script(tmp_path / "py", "echo /elsewhere/bridge/cli.py\n")
    other = doctor_hooks.check_hook_command(
        None, tmp_path, environ, f"{other_python} -m bridge hook"
    )
    assert not other[0].ok and "/elsewhere/bridge/cli.py" in other[0].detail


def test_another_agentbridge_on_the_agents_path_is_reported_but_ok(tmp_path: Path) -> None:
    other_python = script(tmp_path / "py", "echo /elsewhere/bridge/cli.py\n")
    shadow = tmp_path / "shadow" / "agentbridge"
    shadow.parent.mkdir()
    shadow.write_text(f"#!{other_python}\n")
    shadow.chmod(0o755)
    path = write_config(
        tmp_path, [{"slug": "a", "workdir": "w", "env": {"PATH": f"{shadow.parent}:/usr/bin"}}]
    )
    environ = dict(os.environ)
    config = load_config(path, environ)
    checks = doctor_hooks.check_hook_command(
        config, tmp_path, environ, command=f"{sys.executable} -m bridge hook"
    )
    on_path = [c for c in checks if c.name == "agentbridge on PATH"]
    assert len(on_path) == 1 and on_path[0].ok and on_path[0].agent == "a"
    assert "another installation (/elsewhere/bridge/cli.py)" in on_path[0].detail
    assert "harmless" in on_path[0].detail


def test_state_dir_under_a_regular_file_is_not_writable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    checks = basics.check_state_dir(tmp_path / "file" / "state")
    assert [(c.name, c.ok) for c in checks] == [("state dir", False)]
    assert "not writable" in checks[0].detail


def test_state_dir_with_a_database_opens_it(tmp_path: Path) -> None:
    Store(tmp_path / "state.db").close()
    checks = basics.check_state_dir(tmp_path)
    assert all(c.ok for c in checks), checks
    assert "state.db opens (schema v" in checks[-1].detail
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".doctor")) == []


# -- slack -----------------------------------------------------------------------------------------


class FakeSlack(ThreadingHTTPServer):
    """Just the Web API methods the doctor calls, over two conversations.list pages."""

    bot_token = "xoxb-good"
    app_token = "xapp-good"
    pages: ClassVar[dict[str, tuple[list[dict[str, Any]], str]]] = {
        "": ([{"id": "C1", "name": "alpha", "is_member": True}], "page2"),
        "page2": ([{"id": "C2", "name": "beta", "is_member": False}], ""),
    }
    info: ClassVar[dict[str, dict[str, Any]]] = {
        "C3AAAAAAAA": {"id": "C3AAAAAAAA", "name": "gamma", "is_member": True}
    }

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SlackHandler)
        self.calls: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/"


class _SlackHandler(BaseHTTPRequestHandler):
    server: FakeSlack

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode()) | parse_qs(url.query)
        params = {k: v[0] for k, v in form.items()}
        method = url.path.rsplit("/", 1)[-1]
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        self.server.calls.append(method)
        self._send(self._answer(method, token, params))

    def _answer(self, method: str, token: str, params: dict[str, str]) -> dict[str, Any]:
        srv = self.server
        if method == "apps.connections.open":
            return {"ok": token == srv.app_token, "url": "wss://x", "error": "invalid_auth"}
        if token != srv.bot_token:
            return {"ok": False, "error": "invalid_auth"}
        if method == "auth.test":
            return {"ok": True, "user": "bridgebot", "user_id": "U1", "team": "T"}
        if method == "conversations.list":
            channels, cursor = srv.pages[params.get("cursor", "")]
            return {"ok": True, "channels": channels, "response_metadata": {"next_cursor": cursor}}
        if method == "conversations.info" and params.get("channel") in srv.info:
            return {"ok": True, "channel": srv.info[params["channel"]]}
        return {"ok": False, "error": "channel_not_found"}

    def _send(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    server = FakeSlack()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_slack_not_configured_is_fine_and_half_configured_is_not() -> None:
    assert check_slack(None, {}) == [
        Check("slack", True, "Slack: not configured (console backend)")
    ]
    half = check_slack(None, {"SLACK_BOT_TOKEN": "xoxb-1"})
    assert not half[0].ok and "SLACK_APP_TOKEN is not set" in half[0].detail


def test_slack_channels_membership_one_line_each(tmp_path: Path, slack: FakeSlack) -> None:
    path = write_config(
        tmp_path,
        [
            {"slug": "a1", "workdir": "w", "channel": "#alpha"},
            {"slug": "a2", "workdir": "w", "channel": "#beta"},
            {"slug": "a3", "workdir": "w"},
            {"slug": "a4", "workdir": "w", "channel": "C3AAAAAAAA"},
        ],
    )
    environ = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": slack.app_token,
        "SLACK_API_URL": slack.url.rstrip("/"),
        "HOME": str(tmp_path),
    }
    checks = check_slack(load_config(path, environ), environ)
    by_agent = {c.agent: c for c in checks if c.name == "slack channel"}
    assert checks[0].ok and "bridgebot" in checks[0].detail
    assert checks[1] == Check("slack app token", True, "SLACK_APP_TOKEN opens Socket Mode")
    assert by_agent["a1"].ok and by_agent["a4"].ok
    assert not by_agent["a2"].ok and "not a member (/invite @bridgebot" in by_agent["a2"].detail
    assert not by_agent["a3"].ok and "#a3" in by_agent["a3"].detail
    assert "no such channel" in by_agent["a3"].detail
    assert slack.calls.count("conversations.list") == 2


def test_slack_bad_tokens(tmp_path: Path, slack: FakeSlack) -> None:
    environ = {"SLACK_BOT_TOKEN": "xoxb-bad", "SLACK_APP_TOKEN": "x", "SLACK_API_URL": slack.url}
    checks = check_slack(None, environ)
    assert [(c.ok, c.detail) for c in checks] == [
        (False, "auth.test with SLACK_BOT_TOKEN failed: invalid_auth")
    ]
    environ["SLACK_BOT_TOKEN"] = slack.bot_token
    checks = check_slack(None, environ)
    assert [(c.name, c.ok) for c in checks] == [
        ("slack", True),
        ("slack app token", False),
        ("slack scopes", True),  # a warning: this fake Slack sends no x-oauth-scopes
    ]
    assert "apps.connections.open" in checks[1].detail


# -- output ----------------------------------------------------------------------------------------


def test_render_and_exit_code() -> None:
    checks = [
        Check("tmux", True, "tmux 3.4"),
        Check("canary", False, "exit 2: error: unexpected argument '--nope' found", "web"),
        Check("canary", False, "invalid value 'x' [possible values: a, b] [/bold]", "api"),
    ]
    assert report.exit_code(checks) == 1
    assert report.exit_code(checks[:1]) == 0
    data = json.loads(report.render(checks, as_json=True))
    assert data[1] == {
        "name": "canary",
        "ok": False,
        "detail": "exit 2: error: unexpected argument '--nope' found",
        "agent": "web",
        "warning": False,
    }
    text = report.render(checks, as_json=False)
    assert "FAIL" in text and "web" in text and "'--nope'" in text
    assert "[possible values: a, b] [/bold]" in text  # printed as is, not as markup
    assert "3 checks, 2 failed" in text
