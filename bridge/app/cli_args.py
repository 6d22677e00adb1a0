"""The ``agentbridge`` argument tree and the help a person reads.

Kept apart from :mod:`bridge.app.cli` (which runs the commands) so both stay small; every
subcommand and option carries a one-line help (``tests/unit/test_cli_help.py`` walks the tree).
"""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Run a fleet of coding agents (Claude Code, Codex CLI), each in its own tmux session, and mirror
each one to a Slack channel (or to stdout without Slack tokens). What people write in the
channel is pasted into the agent.

Try it with no keys and no network:  agentbridge demo
Then, in another shell:              agentbridge status"""

EPILOG = """\
state dir: --state-dir, else $AGENTBRIDGE_HOME, else ~/.agentbridge. While `agentbridge demo`
runs, status/send/attach/doctor without --state-dir or --config find the demo's fleet.
exit codes: 0 ok, 1 a check failed, 2 bad config or usage, 3 a runner already uses the state dir.
`agentbridge COMMAND --help` describes each command."""

HOOK_USAGE = """\
usage: agentbridge hook EVENT

Relay one hook payload (JSON on stdin) from an agent's CLI to the runner over its unix socket.
The runner configures every agent's CLI to run this; people never need to. It always exits 0
within about 2 seconds and prints nothing (for EVENT=statusline: the agent's status line);
failures go to hooks.log in the state dir, which `agentbridge doctor` reads.
EVENT=wait:<Event> (a question or an approval) instead waits for a person's answer from chat,
reconnecting if the runner restarts, and prints it as the CLI's hook output.

environment (set by the runner in each agent's pane):
  AGENTBRIDGE_HOOK_SOCKET  the runner's hook socket
  AGENTBRIDGE_SLUG         the agent
  AGENTBRIDGE_HOOK_TOKEN   the per-launch token the runner checks
  KANBAN_SESSION_ID        the agent's stable id"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentbridge",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    state_help = "state dir (default: $AGENTBRIDGE_HOME, else ~/.agentbridge)"
    parser.add_argument("--state-dir", help=state_help)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, help: str, config: bool = True, follow_demo: bool = False
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
        if config:
            p.add_argument(
                "--config", help="agents.yaml (default: the running runner's, or ./agents.yaml)"
            )
        p.add_argument("--state-dir", default=argparse.SUPPRESS, help=state_help)
        p.set_defaults(follow_demo=follow_demo)
        return p

    def verbose(p: argparse.ArgumentParser) -> None:
        p.add_argument("-v", "--verbose", action="store_true", help="log debug messages too")

    p = add("run", "run the fleet in the foreground (Ctrl-C/SIGTERM stops the runner)", False)
    p.add_argument(
        "--config", help="agents.yaml to run (default: $AGENTBRIDGE_CONFIG, else ./agents.yaml)"
    )
    p.add_argument("--stop-agents", action="store_true", help="stop agents when the runner stops")
    verbose(p)

    p = add("validate", "check a config file and print OK or one line per problem")

    p = add(
        "status", "show each agent: activity, context, uptime, restarts, queue", follow_demo=True
    )
    p.add_argument("--json", action="store_true", help="every field, as JSON")
    p.add_argument("--wide", action="store_true", help="every column (needs a wide terminal)")

    p = add("send", "paste a prompt into an agent", follow_demo=True)
    p.add_argument("slug", help="the agent")
    p.add_argument("text", nargs="+", help="the prompt ('-' reads stdin)")
    p.add_argument(
        "--wait",
        type=float,
        default=30.0,
        help="seconds to wait for delivery before reporting 'queued' (default 30)",
    )

    p = add("attach", "attach to an agent's tmux session (detach: Ctrl-b d)", follow_demo=True)
    p.add_argument("slug", help="the agent")

    p = add("reconcile", "one supervision pass (launch, relaunch, stop), then exit")
    p.add_argument("--once", action="store_true", default=True, help="one pass (the default)")
    p.add_argument("--hooks", action="store_true", help="configure agent hooks")
    verbose(p)

    p = add("spawn", "start a one-shot agent from a template agent (e.g. a PR reviewer)")
    p.add_argument("template", help="slug of the agent to copy")
    p.add_argument("--name", required=True, help="slug of the new agent")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a key (dotted for nested: env.GH_REPO=x); repeatable",
    )
    p.add_argument("--prompt", required=True, help="the task it runs, then it stops")

    p = add("review", "review a pull request with a reviewer template (docs/pr-review.md)")
    p.add_argument("pr", nargs="?", help="PR number or URL")
    p.add_argument("--template", help="the reviewer template (needed when there are several)")
    p.add_argument("--clean", action="store_true", help="remove finished reviews now")
    p.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the start")

    p = add(
        "doctor",
        "check tmux, the CLIs and their launch flags, hooks, state dir, Slack",
        follow_demo=True,
    )
    p.add_argument("--json", action="store_true", help="the checks as JSON")

    p = add("demo", "run a demo fleet on fake model servers and the real CLIs", config=False)
    verbose(p)
    p.add_argument(
        "--console", action="store_true", help="no Slack emulator: mirror to stdout instead"
    )
    p.add_argument(
        "--port", type=int, help="the emulated Slack page's port (default 8765 if free; 0: any)"
    )

    p = add("state", "export the state database to a file, or import one (runner stopped)")
    p.add_argument("action", choices=("export", "import"), help="which way")
    p.add_argument("file", help="the JSON-lines file ('-': stdout or stdin)")

    p = add("move", "move an agent to another host's runner (shared Postgres store only)")
    p.add_argument("slug", help="the agent")
    p.add_argument("--to", required=True, help="the new host (its AGENTBRIDGE_HOST)")
    p.add_argument(
        "--wait", type=float, default=0, help="seconds to wait for the handover (default: none)"
    )

    p = add("hook", "relay one CLI hook to the runner (agents run this, not people)", False)
    p.add_argument("event", help="the hook event (SessionStart, Stop, statusline, ...)")
    return parser
