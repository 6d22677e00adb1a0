"""Every subcommand and option of ``agentbridge`` explains itself in one line, the top-level
help is written for users, and ``agentbridge hook --help`` prints its usage."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from bridge.app import cli
from bridge.app.cli_args import build_parser


def walk(parser: argparse.ArgumentParser, path: str = "agentbridge") -> list[tuple[str, str]]:
    """(where, what) for every action without help text, recursing into subcommands."""
    missing: list[tuple[str, str]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                if not helps.get(name):
                    missing.append((path, f"subcommand {name}"))
                missing += walk(sub, f"{path} {name}")
            continue
        text = action.help
        if not text or text == argparse.SUPPRESS or "\n" in text.strip():
            missing.append((path, "/".join(action.option_strings) or action.dest))
    return missing


def test_every_subcommand_and_option_has_one_line_of_help() -> None:
    assert walk(build_parser()) == []


def test_the_walk_would_see_a_missing_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub.choices["status"].add_argument("--undocumented", action="store_true")
    assert walk(parser) == [("agentbridge status", "--undocumented")]


def test_every_subcommand_has_a_handler() -> None:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(cli.COMMANDS)


def test_top_level_help_is_for_users(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "``" not in out and "Subcommands stay thin" not in out  # not the module docstring
    assert "agentbridge demo" in out and "exit codes" in out


@pytest.mark.parametrize("argv", [["hook", "--help"], ["hook", "-h"], ["hook"]])
def test_hook_help_prints_its_usage(argv: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bridge", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0
    assert out.stdout.startswith("usage: agentbridge hook EVENT")
    assert "AGENTBRIDGE_HOOK_SOCKET" in out.stdout
