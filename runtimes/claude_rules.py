"""The session rule "Always allow this session" installs on Claude: exactly one command.

Claude reads a ``Bash`` rule's content three ways (read off the 2.1.332 and 2.1.337 binaries,
the function that classifies a rule, and checked against the real CLI in
``tests/e2e/test_approvals_exact.py``):

- ending in ``:*`` (``^(.+):\\*$``): a **prefix** rule, ``npm run:*`` allows every command that
  starts with ``npm run``;
- holding a ``*`` not escaped by a backslash: a **wildcard** rule, each ``*`` matching any run
  of characters (``touch note*.txt`` allows ``touch note.txt pwned.txt``);
- anything else: an **exact** rule, compared with ``===`` to the command (Claude also tries
  the command with harmless wrappers stripped, which is the same command to a person).

``\\*`` is a literal star *inside a wildcard rule* only: a rule whose stars are all escaped is
an exact rule whose text still holds the backslashes, so it matches no command. There is no way
to write an exact rule for a command holding ``*``, so such a command gets no session rule
and the button is not offered (docs/questions.md). A rule starting ``certified: `` is another
kind again (a classifier's), so such a command gets none either.

Only ``Bash`` gets a rule: for the file tools (``Write``, ``Edit``) a rule's content is a path
pattern, not the call the person saw, and for other tools (web fetches, MCP tools) the call's
input is not a rule at all; there the person chooses once each time.
"""

from __future__ import annotations

from typing import Any

from runtimes.asks import Ask

SHELL_TOOL = "Bash"
_SPECIAL_PREFIX = "certified: "


def session_rule(ask: Ask) -> dict[str, Any] | None:
    """The ``addRules`` entry that allows exactly ``ask.command``, or None when Claude's rule
    syntax cannot say "this command and nothing else" for it."""
    command = ask.command
    if ask.tool != SHELL_TOOL or not isinstance(ask.tool_input.get("command"), str):
        return None
    if not command.strip() or "*" in command or command.startswith(_SPECIAL_PREFIX):
        return None
    if command != command.strip():
        return None  # Claude trims a rule's content: the rule would not be the command shown
    return {"toolName": SHELL_TOOL, "ruleContent": command}
