"""One doctor check's result; every check module returns these."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One finding: what was checked, whether it is fine, and what to tell the person.

    ``agent`` names the agent a finding is about, so a fleet's report reads per agent.
    Informational findings (e.g. a harmless ``agentbridge`` earlier on PATH) are ``ok``.
    ``warning`` marks an ok finding worth a look that does not fail the doctor (a CLI version
    outside the tested set, transcript records the parser does not know).
    """

    name: str
    ok: bool
    detail: str
    agent: str | None = None
    warning: bool = False
