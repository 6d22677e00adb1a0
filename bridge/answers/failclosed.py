"""What the approval hook gets when the approval path fails: a deny, and a note for the channel.

Failing closed (docs/questions.md, "Failing closed"): an empty reply would let the CLI draw its
own dialog in a pane nobody watches, so any error on the way to a person (the database, the
chat, a payload that is not an ask) denies the call. The model reads why; the channel is told
what was denied.
"""

from __future__ import annotations

from typing import Any

from bridge.answers.blocks import esc
from runtimes.asks import APPROVAL_EVENT, deny_output


def denied(
    slug: str, event: str, payload: dict[str, Any], err: Exception
) -> tuple[dict[str, Any], str]:
    """(the CLI's hook output denying the call, the channel's note saying so)."""
    what = "approval request" if event == APPROVAL_EVENT else "question"
    tool_input = payload.get("tool_input")
    shown = tool_input.get("command") if isinstance(tool_input, dict) else None
    detail = f" (`{esc(str(shown)[:300])}`)" if isinstance(shown, str) else ""
    reason = (
        f"agentbridge could not relay this {what} to chat ({type(err).__name__}), so it was denied."
    )
    note = (
        f":no_entry: {slug}: a {what}{detail} could not be relayed here "
        f"({type(err).__name__}: {esc(str(err)[:200])}); it was denied, nothing ran."
    )
    return deny_output(event, reason), note
