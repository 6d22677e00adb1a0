"""The transcript record types each parser knows, and which ones a line's record is not.

A parser skips a record type it does not know (the CLIs add bookkeeping types freely), so a
release that renames or adds the records that matter would silently mirror nothing. Naming
the unknown types lets the mirror count them per agent (``status --json``, ``doctor``) as the
first sign of a format change. Known = seen on a tested version (FORMATS.md, the fixtures,
real runs), whether mirrored or deliberately skipped. Only types are classified, not fields:
both vendors add fields in most releases, harmlessly, so a field count would be noise.
"""

from __future__ import annotations

from typing import Any

CLAUDE_TYPES = frozenset(
    {
        "user",
        "assistant",
        "system",
        "summary",
        "attachment",
        "file-history-snapshot",
        "last-prompt",
        "mode",
        "permission-mode",
        "api-request",
        "api-request-blob",
        "api-request-shape",
        "tools-used",
        "atis-latch",
        "cost-state",
        "queue-operation",
        # 2.1.337 (tests/fixtures/claude-2.1.337/): the session title, the API route taken
        "ai-title",
        "api-request-route",
    }
)
CLAUDE_SYSTEM_SUBTYPES = frozenset(
    {
        "compact_boundary",
        "turn_duration",
        "stop_hook_summary",
        # 2.1.337: a notice in the transcript, e.g. tag ``auto_compact_window`` ("This session
        # is on auto, which now autocompacts near 400k tokens instead of 1m ..."); not mirrored
        "informational",
    }
)

CODEX_TYPES = frozenset(
    {
        "session_meta",
        "event_msg",
        "response_item",
        "turn_context",
        "world_state",
        "token_usage_record",
        "compacted",
    }
)
CODEX_SUBTYPES: dict[str, frozenset[str]] = {
    "event_msg": frozenset(
        {
            # handled by codex_parse (tests check this list covers its handlers)
            "item_completed",
            "user_message",
            "agent_message",
            "agent_reasoning",
            "exec_command_end",
            "patch_apply_end",
            "task_started",
            "task_complete",
            "turn_aborted",
            "token_count",
            "error",
            # seen and skipped
            "thread_settings_applied",
            "exec_command_begin",
            "patch_apply_begin",
        }
    ),
    "response_item": frozenset(
        {
            "message",
            "reasoning",
            "function_call",
            "function_call_output",
            "custom_tool_call",
            "custom_tool_call_output",
            "local_shell_call",
        }
    ),
}
CODEX_ITEMS = frozenset({"UserMessage", "AgentMessage", "CommandExecution", "Reasoning"})


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def claude_unknown(obj: dict[str, Any]) -> str | None:
    """``type`` (or ``system/<subtype>``) of a Claude record this parser does not know."""
    kind = _str(obj.get("type")) or "(no type)"
    if kind not in CLAUDE_TYPES:
        return kind
    subtype = _str(obj.get("subtype"))
    if kind == "system" and subtype is not None and subtype not in CLAUDE_SYSTEM_SUBTYPES:
        return f"system/{subtype}"
    return None


def codex_unknown(obj: dict[str, Any]) -> str | None:
    """``type``, ``<type>/<payload type>`` or ``item_completed/<item type>`` of a Codex record
    this parser does not know."""
    kind = _str(obj.get("type")) or "(no type)"
    if kind not in CODEX_TYPES:
        return kind
    payload = _dict(obj.get("payload"))
    sub = _str(payload.get("type"))
    known = CODEX_SUBTYPES.get(kind)
    if known is None or sub is None:
        return None
    if sub not in known:
        return f"{kind}/{sub}"
    if sub == "item_completed":
        item = _str(_dict(payload.get("item")).get("type"))
        if item is not None and item not in CODEX_ITEMS:
            return f"item_completed/{item}"
    return None
