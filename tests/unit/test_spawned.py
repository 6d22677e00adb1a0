"""Spawned agents (issue 11 items 13 and 14): a broken one is reported and skipped, never
blocking the fleet; spawning a name again is a fresh run; agents added by a reload or a spawn
get their channel resolved."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from bridge.app.cli import main
from bridge.app.daemon import Daemon
from bridge.channel.chatbridge import ChatBridge
from bridge.chat.console import ConsoleBackend
from bridge.config.model import parse_config
from bridge.config.spawned import SPAWN_ID, load_fleet, spawn, spawned_dir
from bridge.fleet.reconcile import Reconciler
from bridge.fleet.tmux import TmuxServer
from bridge.lifecycle.core import Lifecycle
from bridge.store.db import Store


def fleet(tmp_path: Path, *slugs: str) -> Path:
    agents = []
    for slug in slugs:
        (tmp_path / slug).mkdir(exist_ok=True)
        agents.append({"slug": slug, "workdir": str(tmp_path / slug), "enabled": slug != "tpl"})
    path = tmp_path / "agents.yaml"
    path.write_text(yaml.safe_dump({"agents": agents}))
    return path


def test_a_spawned_agent_whose_workdir_was_removed_is_reported_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = fleet(tmp_path, "tpl", "main")
    state = tmp_path / "state"
    tree = tmp_path / "pr-7-tree"
    tree.mkdir()
    spawn(config_path, state, "tpl", "pr-7", [f"workdir={tree}"], "review 7")
    assert [a.slug for a in load_fleet(config_path, state).agents] == ["tpl", "main", "pr-7"]
    shutil.rmtree(tree)  # the documented cleanup, half done
    problems: list[str] = []
    config = load_fleet(config_path, state, problems=problems)
    assert [a.slug for a in config.agents] == ["tpl", "main"]
    assert len(problems) == 1
    line = problems[0]
    assert line.startswith(str(spawned_dir(state) / "pr-7.yaml")) and "skipped" in line
    assert "does not exist" in line and "agents[2]" not in line
    # An edit of agents.yaml is not refused because of it.
    fleet(tmp_path, "tpl", "main", "added")
    assert [a.slug for a in load_fleet(config_path, state, problems=[]).agents][-1] == "added"
    # validate and status agree with run: a warning naming the file, then OK / exit 0.
    base = ["--state-dir", str(state)]
    assert main([*base, "validate", "--config", str(config_path)]) == 0
    out = capsys.readouterr().out
    assert "pr-7.yaml" in out and "skipped" in out and out.rstrip().endswith("OK")
    assert main([*base, "status", "--json", "--config", str(config_path)]) == 0
    captured = capsys.readouterr()
    assert "pr-7.yaml" in captured.err
    assert [row["slug"] for row in json.loads(captured.out)] == ["tpl", "main", "added"]


def test_broken_spawned_files_of_every_kind_are_skipped(tmp_path: Path) -> None:
    config_path = fleet(tmp_path, "tpl", "main")
    folder = spawned_dir(tmp_path / "state")
    folder.mkdir(parents=True)
    (folder / "a.yaml").write_text("slug: [unclosed\n")
    (folder / "b.yaml").write_text("- a list\n")
    (folder / "c.yaml").write_text(yaml.safe_dump({"slug": "main", "workdir": str(tmp_path)}))
    (folder / "d.yaml").write_text(yaml.safe_dump({"slug": "d", "workdir": str(tmp_path), "x": 1}))
    problems: list[str] = []
    config = load_fleet(config_path, tmp_path / "state", problems=problems)
    assert [a.slug for a in config.agents] == ["tpl", "main"]
    assert [Path(p.split(":")[0]).name for p in problems] == [
        "a.yaml",
        "b.yaml",
        "c.yaml",
        "d.yaml",
    ]
    assert all(p.endswith("skipped") for p in problems)


def test_spawning_a_name_again_is_a_fresh_run_that_the_runner_un_holds(tmp_path: Path) -> None:
    config_path = fleet(tmp_path, "tpl")
    state = tmp_path / "state"
    path = spawn(config_path, state, "tpl", "pr-7", [f"workdir={tmp_path}"], "first")
    first = yaml.safe_load(path.read_text())[SPAWN_ID]
    store = Store(state / "state.db")

    class Restarts:
        def __init__(self) -> None:
            self.slugs: list[str] = []

        def restart(self, slug: str) -> str:
            self.slugs.append(slug)
            store.set_state(slug, "starting")
            return slug

    daemon = Daemon(config_path, state)
    fake = Restarts()
    daemon._respawned(store, fake)  # type: ignore[arg-type]
    assert fake.slugs == []  # a first spawn simply launches
    store.upsert_agent("pr-7", "claude", "id", "hash")
    store.set_state("pr-7", "done")  # its task finished: held down
    daemon._respawned(store, fake)  # type: ignore[arg-type]
    assert fake.slugs == []
    spawn(config_path, state, "tpl", "pr-7", [f"workdir={tmp_path}"], "second")
    assert yaml.safe_load(path.read_text())[SPAWN_ID] != first
    assert load_fleet(config_path, state).agent("pr-7").task == "second"  # type: ignore[union-attr]
    daemon._respawned(store, fake)  # type: ignore[arg-type]
    assert fake.slugs == ["pr-7"]
    assert store.agent("pr-7").state == "starting"  # type: ignore[union-attr]
    daemon._respawned(store, fake)  # type: ignore[arg-type]
    assert fake.slugs == ["pr-7"]  # once per spawn


class Resolving(ConsoleBackend):
    def __init__(self) -> None:
        super().__init__(stream=open("/dev/null", "w"))  # noqa: SIM115
        self.asked: list[list[str]] = []

    async def resolve_channels(self, wanted: Sequence[str]) -> list[str]:
        self.asked.append(list(wanted))
        self.channels.update({c: f"C{c[1:].upper()}000000" for c in wanted})
        return []


def test_agents_added_by_a_reload_get_their_channel_resolved(tmp_path: Path) -> None:
    config_path = fleet(tmp_path, "one")
    config = parse_config(config_path.read_text(), config_path)
    store = Store(tmp_path / "state.db")
    tmux = TmuxServer("ab-unused-chatbridge")
    lifecycle = Lifecycle(config, store, tmux, tmp_path, tmp_path / "locks", lambda s, t: None)
    reconciler = Reconciler(config, store, tmux, mark="m")
    backend = Resolving()

    async def scenario() -> None:
        chat = ChatBridge(config, backend, lifecycle, reconciler, tmp_path / "inbox")
        await chat.start()
        assert backend.asked == [["#one"]]
        fleet(tmp_path, "one", "two")
        chat.update_config(parse_config(config_path.read_text(), config_path))
        deadline = time.monotonic() + 10
        while len(backend.asked) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert backend.asked == [["#one"], ["#two"]]
        assert chat.inbound.recipient("CTWO000000", None).agent is not None  # steering reaches it
        chat.update_config(parse_config(config_path.read_text(), config_path))
        await asyncio.sleep(0)
        assert len(backend.asked) == 2  # nothing new: nothing asked

    asyncio.run(scenario())
