"""A question tool call is mirrored as what it is (issue 20, item 21).

On 18679b4 the mirror showed Claude's ``AskUserQuestion`` call as its raw input, a Python repr
(``AskUserQuestion(questions=[{'question': ...``), right next to the question's own message
with its buttons. The runtime's parser now marks a question call (``Event.meta["asks"]``, the
question texts) and the renderer, which knows no CLI, shows ``Asked: <question>``. Read from
records shaped as in the real transcripts of Claude 2.1.328 and Codex 0.169.0.
"""

from __future__ import annotations

import json

import pytest

from bridge.render.event import render_event
from bridge.render.tools import tool_one_liner
from runtimes import get_runtime
from runtimes.events import Event, EventKind
from tests.conftest import FIXTURES

TRANSCRIPTS = {
    "claude": FIXTURES / "claude-2.1.328" / "0f4d7a0e-3a55-4c3e-9d8e-1a2b3c4d5e6f.jsonl",
    "codex": next((FIXTURES / "codex-0.169.0").glob("rollout-*.jsonl")),
}
TOOLS = {"claude": "AskUserQuestion", "codex": "request_user_input"}
QUESTION = {
    "question": "Which color for zz91?",
    "header": "Color",
    "options": [{"label": "red", "description": "the red one"}, {"label": "blue"}],
}


def question_line(runtime: str) -> bytes:
    """A real transcript's shell call turned into a question call (same record shape): the
    fixtures hold no answered question call of their own."""
    for line in TRANSCRIPTS[runtime].read_bytes().splitlines():
        record = json.loads(line)
        if runtime == "claude":
            blocks = (record.get("message") or {}).get("content") or []
            uses = [b for b in blocks if isinstance(b, dict) and b.get("type") == "tool_use"]
            if uses:
                uses[0]["name"], uses[0]["input"] = TOOLS[runtime], {"questions": [QUESTION]}
                return json.dumps(record).encode()
        elif (record.get("payload") or {}).get("type") == "function_call":
            record["payload"]["name"] = TOOLS[runtime]
            record["payload"]["arguments"] = json.dumps({"questions": [{"id": "q1", **QUESTION}]})
            return json.dumps(record).encode()
    raise AssertionError("no tool call in the fixture")


def question_calls(runtime: str) -> list[Event]:
    result = get_runtime(runtime).parse_line(question_line(runtime), 0, "t.jsonl")
    return [e for e in result.events if e.kind is EventKind.TOOL_CALL]


@pytest.mark.parametrize("runtime", ["claude", "codex"])
def test_a_question_call_is_mirrored_as_asked_not_as_a_repr(runtime: str) -> None:
    calls = question_calls(runtime)
    assert [c.tool for c in calls] == [TOOLS[runtime]]
    for call in calls:
        rendered = render_event(call)
        assert rendered is not None
        assert rendered.text == "`Asked: Which color for zz91?`"
        assert call.meta.get("asks") == ["Which color for zz91?"]  # marked by the runtime


def test_several_questions_and_unmarked_calls() -> None:
    meta = {"asks": ["Which color?", "Which size?"]}
    assert tool_one_liner("AskUserQuestion", {}, meta) == "Asked: Which color? (+1 more)"
    # unmarked: the renderer does not guess from the tool's name (no CLI knowledge there)
    assert tool_one_liner("Other", {"a": "b"}, {}) == "Other(a=b)"
