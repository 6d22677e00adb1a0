"""The ``agentbridge`` command line (the contract external scripts rely on).

Subcommands stay thin: each parses its arguments and calls one module that does the work.
Exit codes: 0 ok, 1 a check failed (validate, unknown slug), 2 bad config or usage, 3 the
runner is already running. The argument tree and its help live in :mod:`bridge.app.cli_args`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.config import paths

if TYPE_CHECKING:  # keep `agentbridge hook`, run on every agent hook, free of heavy imports
    from bridge.config.model import Config
    from bridge.fleet.tmux import TmuxServer

DEFAULT_CONFIG = "agents.yaml"


def _state_dir(args: argparse.Namespace) -> Path:
    """The state dir as the contract says; for the commands that look at a running fleet
    (``follow_demo`` set), the running demo's when nothing else was asked for."""
    explicit = getattr(args, "state_dir", None)
    root = paths.state_dir(explicit)
    asked_config = getattr(args, "config", None) or os.environ.get("AGENTBRIDGE_CONFIG")
    if explicit or asked_config or not getattr(args, "follow_demo", False):
        return root
    from bridge.app.runner_files import follow_demo

    return follow_demo(root)


def _require_file(path: Path) -> None:
    """A missing config is reported as missing (not as an empty one) with where to look."""
    if not path.is_file():
        what = "is not a file" if path.exists() else "no such config file"
        print(
            f"agentbridge: {path}: {what} (pass --config FILE, or run where agents.yaml is)",
            file=sys.stderr,
        )
        raise SystemExit(2)


def _config_path(args: argparse.Namespace) -> Path:
    """--config, else AGENTBRIDGE_CONFIG, else the running runner's config, else ./agents.yaml."""
    if getattr(args, "config", None):
        return Path(args.config)
    if os.environ.get("AGENTBRIDGE_CONFIG"):
        return Path(os.environ["AGENTBRIDGE_CONFIG"])
    from bridge.app.runner_files import read_runner_info

    running = read_runner_info(_state_dir(args)).get("config")
    return Path(running) if running else Path(DEFAULT_CONFIG)


def _load(args: argparse.Namespace) -> Config:
    """agents.yaml plus the agents spawned into the state dir."""
    from bridge.config.model import ConfigError
    from bridge.config.spawned import load_fleet

    path = _config_path(args)
    _require_file(path)
    problems: list[str] = []
    try:
        config = load_fleet(path, _state_dir(args), problems=problems)
    except ConfigError as err:
        for line in err.errors:
            print(line, file=sys.stderr)
        raise SystemExit(2) from None
    for line in problems:  # a broken spawned agent is skipped, never fatal (as in `run`)
        print(f"warning: {line}", file=sys.stderr)
    return config


def _tmux(args: argparse.Namespace, config: Config) -> TmuxServer:
    from bridge.app.runner_files import read_runner_info
    from bridge.fleet.tmux import TmuxServer

    socket = paths.tmux_socket(config.tmux_socket)
    if socket is None:
        socket = read_runner_info(_state_dir(args)).get("tmux_socket")
    return TmuxServer(socket)


def cmd_run(args: argparse.Namespace) -> int:

    from bridge.app.daemon import Daemon, run_daemon
    from bridge.app.logs import setup_logging

    config = Path(args.config or os.environ.get("AGENTBRIDGE_CONFIG") or DEFAULT_CONFIG)
    if not os.path.lexists(config):  # anything else in its place: the last good copy runs
        _require_file(config)
    setup_logging(args.verbose)
    daemon = Daemon(config, _state_dir(args), stop_agents=args.stop_agents)
    return run_daemon(daemon)


def cmd_validate(args: argparse.Namespace) -> int:
    from bridge.config.model import ConfigError
    from bridge.config.spawned import load_fleet

    path = _config_path(args)
    if not path.is_file():
        print(f"{path}: no such config file")
        return 1
    problems: list[str] = []
    try:  # what `run` loads: agents.yaml plus the spawned agents it would run
        config = load_fleet(path, _state_dir(args), problems=problems)
    except ConfigError as err:
        for line in err.errors:
            print(line)
        return 1
    for line in problems:
        print(f"warning: {line}")
    from bridge.doctor.asks import ask_problems, describe

    refused = ask_problems(config, os.environ)
    for slug, why in refused.items():
        print(describe(config, slug, why))
    if refused:
        return 1
    print("OK")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from bridge.app.runner_files import runner_note
    from bridge.app.status import as_json, collect, print_table
    from bridge.doctor.slack import uses_slack
    from bridge.store.engine import open_view

    state = _state_dir(args)
    if not _config_path(args).is_file():  # say first that nothing runs, then what is missing
        print(runner_note(state), file=sys.stderr)
    config = _load(args)
    store = open_view(state, config.store)
    tmux = _tmux(args, config)
    statuses = collect(config, store, tmux, slack=uses_slack(os.environ, state))
    note = runner_note(state)
    if args.json:
        print(note, file=sys.stderr)
        print(json.dumps(as_json(statuses), indent=2))
    else:
        print(note)
        print_table(statuses, wide=args.wide)
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    """Through the runner's durable queue when a runner is up, else straight into the pane."""
    from bridge.app.runner_files import runner_alive

    config = _load(args)
    agent = config.agent(args.slug)
    if agent is None:
        known = ", ".join(a.slug for a in config.agents) or "none"
        print(f"agentbridge: unknown agent {args.slug!r} (known: {known})", file=sys.stderr)
        return 1
    text = " ".join(args.text) if args.text != ["-"] else sys.stdin.read()
    state = _state_dir(args)
    if runner_alive(state):
        return _send_queued(state, agent.slug, text, args.wait, config.store)
    return _send_direct(args, config, agent.slug, text)


def _send_queued(
    state: Path, slug: str, text: str, wait: float, configured: str | None = None
) -> int:
    import time

    from bridge.lifecycle.steer import sanitize
    from bridge.store.engine import open_store
    from bridge.store.queue import Kind, PromptQueue

    if not sanitize(text).text.strip():
        print(
            f"agentbridge: {slug}: nothing to send after removing control characters",
            file=sys.stderr,
        )
        return 1
    store = open_store(state, configured)
    queue = PromptQueue(store)
    item_id = queue.enqueue(slug, Kind.STEER, text, source={"via": "cli"})
    assert item_id is not None
    deadline = time.monotonic() + wait
    while True:
        item = queue.get(item_id)
        status = item.status if item else "missing"
        if status in ("delivered", "confirmed"):
            print(f"{slug}: sent ({len(text)} characters, #{item_id})")
            return 0
        if status in ("failed", "dropped"):
            rows = store.query("SELECT outcome FROM prompt_queue WHERE id = ?", (item_id,))
            print(f"agentbridge: {slug}: not delivered: {rows[0][0]}", file=sys.stderr)
            return 1
        if time.monotonic() >= deadline:
            print(f"{slug}: queued (#{item_id}); delivered when the agent is ready")
            return 0
        time.sleep(0.1)


def _send_direct(args: argparse.Namespace, config: Config, slug: str, text: str) -> int:
    from bridge.lifecycle.steer import EmptyPrompt, lock_file_for, steer
    from runtimes import get_runtime

    tmux = _tmux(args, config)
    if not tmux.has_session(slug):
        print(
            f"agentbridge: {slug}: no tmux session, and no runner is running for "
            f"{_state_dir(args)}",
            file=sys.stderr,
        )
        return 1
    pane = tmux.pane(slug, lock_file_for(paths.locks_dir(_state_dir(args)), slug))
    agent = config.agent(slug)
    assert agent is not None
    try:
        runtime = get_runtime(agent.runtime)
        result = steer(
            pane,
            text,
            pause=runtime.submit_pause,
            shown=runtime.paste_shown,
            composer=runtime.composer,
        )
    except EmptyPrompt as err:
        print(f"agentbridge: {slug}: {err}", file=sys.stderr)
        return 1
    print(f"{slug}: sent {result.chars} characters (no runner: pasted directly)")
    return 0


def cmd_attach(args: argparse.Namespace) -> int:
    config = _load(args)
    if config.agent(args.slug) is None:
        print(f"agentbridge: unknown agent {args.slug!r}", file=sys.stderr)
        return 1
    tmux = _tmux(args, config)
    socket = tmux.socket
    argv = ["tmux", *(["-L", socket] if socket else []), "attach-session", "-t", f"={args.slug}"]
    os.execvp("tmux", argv)


def cmd_reconcile(args: argparse.Namespace) -> int:
    from bridge.app.logs import setup_logging
    from bridge.fleet.reconcile import Reconciler, runner_mark
    from bridge.hooks.command import hook_command
    from bridge.store.engine import open_store

    setup_logging(args.verbose)
    config = _load(args)
    state = _state_dir(args)
    tmux = _tmux(args, config)
    store = open_store(state, config.store)
    reconciler = Reconciler(
        config,
        store,
        tmux,
        mark=runner_mark(state),
        hook_command=hook_command() if args.hooks else None,
    )
    for action in reconciler.reconcile_once():
        print(f"{action.slug}: {action.kind} {action.detail}".rstrip())
    return 0


def cmd_spawn(args: argparse.Namespace) -> int:
    from bridge.config.model import ConfigError
    from bridge.config.spawned import spawn

    try:
        path = spawn(
            _config_path(args),
            _state_dir(args),
            args.template,
            args.name,
            args.set or [],
            args.prompt,
        )
    except ConfigError as err:
        for line in err.errors:
            print(line, file=sys.stderr)
        return 2
    print(f"{args.name}: spawned from {args.template} ({path}); the runner starts it now")
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    """Ask the runner for a review (it owns gh, git and chat), or clean finished ones now."""
    from bridge.app.runner_files import runner_alive
    from bridge.review.command_line import ask, clean_now

    if args.clean:
        return clean_now(_state_dir(args))
    if not args.pr:
        print("agentbridge review: give a PR number or URL, or --clean", file=sys.stderr)
        return 2
    state = _state_dir(args)
    return ask(state, args.pr, args.template, args.wait, runner_alive(state))


def cmd_doctor(args: argparse.Namespace) -> int:
    from bridge.doctor.report import exit_code, render, run_checks

    checks = run_checks(_config_path(args), _state_dir(args), os.environ)
    print(render(checks, args.json))
    return exit_code(checks)


def cmd_demo(args: argparse.Namespace) -> int:
    from bridge.app.demo import run_demo

    return run_demo(
        state_dir=Path(args.state_dir) if args.state_dir else None,
        verbose=args.verbose,
        console=args.console,
        port=args.port,
    )


def cmd_state(args: argparse.Namespace) -> int:
    from bridge.app.state_cmd import cmd_state as run

    def configured() -> str | None:  # the config's ``store:``, when there is a config
        return _load(args).store if _config_path(args).is_file() else None

    return run(args, _state_dir(args), configured)


def cmd_move(args: argparse.Namespace) -> int:
    from bridge.app.move_cmd import cmd_move as run

    def configured() -> str | None:  # the config's ``store:``, when there is a config
        return _load(args).store if _config_path(args).is_file() else None

    return run(args, _state_dir(args), configured)


def cmd_hook(args: argparse.Namespace) -> int:
    """Reached only through argparse (``main`` takes the fast path for real hooks)."""
    from bridge.hooks.client import main as hook_main

    return hook_main(args.event)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "validate": cmd_validate,
    "status": cmd_status,
    "send": cmd_send,
    "attach": cmd_attach,
    "reconcile": cmd_reconcile,
    "spawn": cmd_spawn,
    "review": cmd_review,
    "doctor": cmd_doctor,
    "demo": cmd_demo,
    "state": cmd_state,
    "move": cmd_move,
    "hook": cmd_hook,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["hook"]:  # the hot path: no argparse tree, no third-party imports
        if len(argv) < 2 or argv[1] in ("-h", "--help"):
            from bridge.app.cli_args import HOOK_USAGE

            print(HOOK_USAGE)
            return 0
        from bridge.hooks.client import main as hook_main

        return hook_main(argv[1])
    from bridge.app.cli_args import build_parser

    args = build_parser().parse_args(argv)
    logging.getLogger().handlers.clear()
    code: int = COMMANDS[args.command](args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
