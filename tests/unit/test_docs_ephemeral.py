"""docs/configuration.md tells the truth about `ephemeral` and `task` (issue 20.18).

The runner acts on both (bridge/lifecycle/core.py queues the task at each launch and reports
the task's end; bridge/app/daemon.py stops the agent as `done`; bridge/fleet/reconcile.py keeps
a `done` agent down; bridge/fleet/launch.py never resumes one; the integration test
``test_spawned_ephemeral_reviewer_runs_its_task_and_is_stopped`` runs it end to end), so the
reference must describe that, not call the keys "validated, but not acted on yet". The text
comes from docs/gen_configuration.py; test_docs.py checks the file is regenerated from it.
"""

from __future__ import annotations

from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def row(key: str, kind: str) -> str:
    """The agent key's table row (``task`` is also a key of reviews, with another type)."""
    head = f"| `{key}` | {kind} |"
    lines = REFERENCE.read_text(encoding="utf-8").splitlines()
    [line] = [ln for ln in lines if ln.startswith(head)]
    return line


def test_ephemeral_and_task_are_documented_as_they_behave() -> None:
    ephemeral, task = row("ephemeral", "bool"), row("task", "string \\| null")
    for text in (ephemeral, task):
        assert "not acted on" not in text and "not sent yet" not in text
    for fact in ("fresh session", "never resumed", "queues `task`", "state `done`", "stays down"):
        assert fact in ephemeral, fact
    assert "`/agent restart`" in ephemeral and "`agentbridge spawn` again" in ephemeral
    assert "queued at each of its launches" in task
