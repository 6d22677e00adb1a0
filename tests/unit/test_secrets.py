"""The runner's Slack tokens and database credentials never reach an agent: not inherited, not
through ``env``.

A reference to ``${SLACK_BOT_TOKEN}`` / ``${SLACK_APP_TOKEN}`` in any agent or runtime ``env``,
or a value that holds a token's text, is a config error naming the file, the agent and the field,
at start (``load_config``) and on hot reload alike (the reload keeps the last good config).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from bridge.config.model import Config, ConfigError, load_config
from bridge.config.watch import watch_config
from bridge.fleet.launch import agent_env
from bridge.fleet.tmux import TmuxServer
from tests.conftest import wait_until

BOT = "xoxb-1111-2222-runner-bot-token"
APP = "xapp-1-A111-runner-app-token"
DB_URL = "postgresql://agentbridge:db-secret-7f3a@db.internal/agentbridge"
PG_PASSWORD = "pg-secret-9c2e1d"
ENV = {"HOME": "/home/t", "SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": APP, "COPY": BOT}
DB_ENV = {
    "AGENTBRIDGE_DATABASE_URL": DB_URL,
    "PGPASSWORD": PG_PASSWORD,
    "PGHOST": "db.internal",
    "PGUSER": "agentbridge",
}


def _write(tmp_path: Path, env_yaml: str, runtime_env: str = "{}") -> Path:
    (tmp_path / "repo").mkdir(exist_ok=True)
    path = tmp_path / "agents.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        runtimes:
          claude: {{env: {runtime_env}}}
        agents:
          - slug: x
            workdir: {tmp_path / "repo"}
            env: {env_yaml}
        """),
        encoding="utf-8",
    )
    return path


def _errors(path: Path, environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ)
    return info.value.errors


@pytest.mark.parametrize(
    ("env_yaml", "field", "why"),
    [
        ('{T: "${SLACK_BOT_TOKEN}"}', "env.T", "${SLACK_BOT_TOKEN} is the runner's Slack token"),
        ('{T: "x-${SLACK_APP_TOKEN}"}', "env.T", "${SLACK_APP_TOKEN} is the runner's Slack token"),
        ('{SLACK_BOT_TOKEN: "${SLACK_BOT_TOKEN}"}', "env.SLACK_BOT_TOKEN", "runner's Slack"),
        ('{T: "${COPY}"}', "env.T", "holds the runner's SLACK_BOT_TOKEN"),
        (f'{{T: "Bearer {APP}"}}', "env.T", "holds the runner's SLACK_APP_TOKEN"),
        ('{T: "${AGENTBRIDGE_DATABASE_URL}"}', "env.T", "runner's database credential"),
        ('{PGPASSWORD: "${PGPASSWORD}"}', "env.PGPASSWORD", "runner's database credential"),
        (f'{{T: "{DB_URL}"}}', "env.T", "holds the runner's AGENTBRIDGE_DATABASE_URL"),
    ],
)
def test_a_runner_token_in_agent_env_is_a_config_error(
    tmp_path: Path, env_yaml: str, field: str, why: str
) -> None:
    path = _write(tmp_path, env_yaml)
    (line,) = _errors(path, {**ENV, **DB_ENV})
    assert line.startswith(f"{path}: agents[0] (slug 'x'): {field}: "), line
    assert why in line


def test_a_token_reference_is_refused_even_while_unset(tmp_path: Path) -> None:
    path = _write(tmp_path, '{T: "${SLACK_BOT_TOKEN}"}')
    (line,) = _errors(path, {"HOME": "/home/t"})
    assert "${SLACK_BOT_TOKEN} is the runner's Slack token" in line


def test_runtime_defaults_are_checked_too(tmp_path: Path) -> None:
    path = _write(tmp_path, "{}", runtime_env='{T: "${SLACK_APP_TOKEN}"}')
    (line,) = _errors(path, ENV)
    assert line.startswith(f"{path}: runtimes.claude.env.T: "), line


def test_escaped_reference_stays_literal_and_no_token_is_in_the_agent_env(tmp_path: Path) -> None:
    path = _write(tmp_path, '{T: "$${SLACK_BOT_TOKEN}", U: "ok"}')
    config = load_config(path, ENV)
    env = agent_env(config, config.agents[0], ENV)
    assert env["T"] == "${SLACK_BOT_TOKEN}"
    assert "SLACK_BOT_TOKEN" not in env and "SLACK_APP_TOKEN" not in env
    assert not any(BOT in v or APP in v for k, v in env.items() if k != "COPY")


def test_the_database_url_and_libpq_variables_are_not_inherited(tmp_path: Path) -> None:
    """With them an agent (or a prompt-injected reviewer) could write routed events as anyone;
    an agent that needs a database of its own is given one through its ``env``."""
    path = _write(tmp_path, '{PGHOST: "agents-db.internal", T: "ok"}')
    environ = {**ENV, **DB_ENV}
    config = load_config(path, environ)
    env = agent_env(config, config.agents[0], environ)
    assert "AGENTBRIDGE_DATABASE_URL" not in env and "PGPASSWORD" not in env
    assert "PGUSER" not in env
    assert env["PGHOST"] == "agents-db.internal" and env["T"] == "ok"  # its own, from env:
    assert not any(DB_URL in v or PG_PASSWORD in v for v in env.values())


def test_reload_refuses_a_token_and_keeps_the_last_good_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    path = _write(tmp_path, '{T: "first"}')
    seen: list[Config] = []
    caplog.set_level(logging.ERROR, logger="agentbridge.config")

    async def until(cond: Callable[[], object], what: str) -> None:
        for _ in range(600):
            if cond():
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    async def scenario() -> None:
        stop = asyncio.Event()
        watch = watch_config(path, seen.append, stop, initial=path.read_text())
        task = asyncio.create_task(watch)
        _write(tmp_path, '{T: "${SLACK_BOT_TOKEN}"}')
        await until(lambda: "slug 'x'): env.T: ${SLACK_BOT_TOKEN}" in caplog.text, "the error")
        _write(tmp_path, '{T: "second"}')
        await until(lambda: seen, "the good reload")
        stop.set()
        await task

    asyncio.run(scenario())
    assert [c.agents[0].env for c in seen] == [{"T": "second"}]


def test_a_tmux_server_started_with_the_tokens_does_not_pass_them_on(
    tmux_socket: str, tmp_path: Path
) -> None:
    """tmux gives every pane its global environment, which is the environment of whoever started
    the server: the runner itself, tokens included. The pane must get exactly the agent's env."""
    started_by_runner = {**os.environ, **ENV, **DB_ENV}
    subprocess.run(
        ["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "first"],
        env=started_by_runner,
        check=True,
    )
    path = _write(tmp_path, '{T: "kept", COPY: "x"}')
    config = load_config(path, started_by_runner)
    env = agent_env(config, config.agents[0], started_by_runner)
    out = tmp_path / "env.json"
    env["DUMP_TO"] = str(out)
    dump = (  # written whole, then renamed: the test never reads a half-written file
        "import json, os; t = os.environ['DUMP_TO'] + '.tmp'; "
        "json.dump(dict(os.environ), open(t, 'w')); os.rename(t, os.environ['DUMP_TO'])"
    )
    TmuxServer(tmux_socket).launch(
        "agent", tmp_path, [sys.executable, "-c", dump], env, mark="m", spec_hash="h"
    )
    seen = wait_until(lambda: out.exists() and json.loads(out.read_text()), what="env dump")
    assert not any(BOT in v or APP in v for v in seen.values())
    assert not any(DB_URL in v or PG_PASSWORD in v for v in seen.values())
    assert set(seen) - set(env) <= {
        "TMUX",
        "TMUX_PANE",
        "SHELL",  # tmux sets it to the pane's shell when the runner's own env has none
        "TERM",
        "TERM_PROGRAM",
        "TERM_PROGRAM_VERSION",
    }
    tmux_sets = {"TERM", "PWD"}  # the pane's terminal type and working directory
    assert {k: v for k, v in env.items() if seen.get(k) != v and k not in tmux_sets} == {}
