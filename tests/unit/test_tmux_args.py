"""Everything handed to tmux as an argument reaches the launched program unchanged.

Real tmux on a private ``-L`` socket, no agent CLI: the "agent" is a tiny Python script that
dumps its argv, environment and working directory to a file. Each hostile value goes in as an
env value (``-e`` and ``set-environment``), as an argument, and (where a directory name can hold
it) in the working directory.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from bridge.fleet.tmux import TmuxServer, exec_argv, literal_arg, literal_format
from tests.conftest import wait_until

HOSTILE = [
    "ends;",
    ";",
    "a ; b",
    "ends\\;",
    "\\;",
    "mid\\;dle",
    "double;;",
    'it\'s "quoted"',
    "$HOME ${PATH} $(id)",
    "`id`",
    "two\nlines",
    "  spaces  ",
    "tab\there",
    "ünïcödé ✅ 日本",
    "#{session_name} #(id) ##",
    "-e",
    "{ braces }",
    "",
]

DUMP = """\
import json, os, sys
out = os.environ["AB_DUMP_TO"]
with open(out + ".tmp", "w", encoding="utf-8") as fh:
    json.dump({"argv": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd()}, fh)
os.rename(out + ".tmp", out)
"""


def _launch(
    tmux_socket: str, tmp_path: Path, cwd: Path, argv: list[str], env: dict[str, str]
) -> Any:
    out = tmp_path / f"dump-{uuid.uuid4().hex[:8]}.json"
    server = TmuxServer(tmux_socket)
    server.launch(
        "argtest",
        cwd,
        argv,
        {**env, "AB_DUMP_TO": str(out)},
        mark="m",
        spec_hash="h",
    )
    wait_until(out.exists, timeout=30, what=f"{out.name} from the launched program")
    return json.loads(out.read_text(encoding="utf-8")), server


@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v)[:30])
def test_hostile_values_reach_the_program_intact(
    value: str, tmux_socket: str, tmp_path: Path
) -> None:
    script = tmp_path / "dump.py"
    script.write_text(DUMP, encoding="utf-8")
    env = {"AB_VALUE": value, "AB_AFTER": "after"}
    argv = [sys.executable, str(script), value, "after", value]
    seen, server = _launch(tmux_socket, tmp_path, tmp_path, argv, env)
    assert seen["argv"] == [value, "after", value]
    assert seen["env"]["AB_VALUE"] == value
    assert seen["env"]["AB_AFTER"] == "after"
    shown = server.run("show-environment", "-t", "=argtest", "AB_VALUE")
    assert "\n".join(shown).startswith("AB_VALUE=")


@pytest.mark.parametrize(
    "name", ["dir;", "dir\\;", "d#{session_name}x", "d#(true)x", "sp ace $x `y`", "ü ✅"]
)
def test_working_directory_is_taken_literally(name: str, tmux_socket: str, tmp_path: Path) -> None:
    script = tmp_path / "dump.py"
    script.write_text(DUMP, encoding="utf-8")
    workdir = tmp_path / name
    workdir.mkdir()
    seen, _ = _launch(tmux_socket, tmp_path, workdir, [sys.executable, str(script)], {})
    assert Path(seen["cwd"]) == workdir


def test_a_one_word_command_is_executed_not_shell_parsed(tmux_socket: str, tmp_path: Path) -> None:
    odd = tmp_path / "my agent; $x `y`"
    odd.mkdir()
    script = odd / "bin;"
    script.write_text(f"#!{sys.executable}\n{DUMP}", encoding="utf-8")
    script.chmod(0o755)
    seen, _ = _launch(tmux_socket, tmp_path, tmp_path, [str(script)], {})
    assert seen["argv"] == []


def test_escaping_helpers() -> None:
    assert literal_arg("a;") == "a\\;"
    assert literal_arg("a\\;") == "a\\\\;"
    assert literal_arg("a;b") == "a;b"
    assert literal_format("/x/#{y}") == "/x/##{y}"
    assert exec_argv(["a", "b"]) == ["a", "b"]
    assert exec_argv(["/p q"]) == ["/bin/sh", "-c", 'exec "$0"', "/p q"]


SLOW_READER = """\
import os, sys, time, tty
tty.setraw(0)
log = open(sys.argv[1], "a", encoding="utf-8")
n = 0
while True:
    time.sleep(0.3)  # busy: whatever arrived meanwhile is read in one go, as a TUI would
    data = os.read(0, 4096)
    n += 1
    log.write(repr(data) + "\\n")
    log.flush()
    sys.stdout.write(f"read {n}\\r\\n")
    sys.stdout.flush()
"""


def test_a_settled_key_is_read_on_its_own_before_the_paste(
    tmux_socket: str, tmp_path: Path
) -> None:
    """``send_key``/``paste`` with ``settle`` wait for the program to show it took the input, so
    an Escape before a paste, or a paste before a key, is not read glued to the next by a CLI
    that reads its input late."""
    script, log = tmp_path / "reader.py", tmp_path / "reads.log"
    script.write_text(SLOW_READER)
    server = TmuxServer(tmux_socket)
    server.launch(
        "reader", tmp_path, [sys.executable, str(script), str(log)], {}, mark="m", spec_hash="h"
    )
    pane = server.pane("reader", tmp_path / "reader.lock")
    wait_until(log.exists, 30, "the reader up, its terminal raw")
    pane.send_key("Escape", settle=5.0)
    pane.paste("/compact", submit=False, settle=5.0)
    pane.send_key("Enter")
    reads = wait_until(
        lambda: len(log.read_text().splitlines()) >= 3 and log.read_text(), 30, "three reads"
    )
    first, second, third = reads.splitlines()[:3]
    assert first == repr(b"\x1b") and "/compact" in second and third == repr(b"\r")
