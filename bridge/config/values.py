"""Scalar value rules of agents.yaml that need more than a type: ``${VAR}`` expansion, token
thresholds (counts or percentages) and crontab lines.

Kept apart from the models in :mod:`bridge.config.model` so each can be read (and tested) on its
own, and so the scheduler can build triggers without going through a model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from bridge.config.errors import describe_value

#: The runner's own credentials. They never reach an agent: not inherited (see
#: ``bridge.fleet.launch.PRIVATE_ENV``) and not through an agent's ``env`` either. The database
#: URL (with its password) would let an agent write routed events as anyone (docs/scaling.md).
RUNNER_SECRETS = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "AGENTBRIDGE_DATABASE_URL", "PGPASSWORD")
_SLACK_TOKENS = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN")
#: Shorter "secrets" are test placeholders; matching them inside values would be noise.
_MIN_SECRET_LEN = 8
DEFAULT_NUDGE = (  # the compaction nudge (model.py re-exports it)
    "Your context window is filling up. Finish the step you are on, write down what you were "
    "doing and what comes next (in your notes or your reply), then run /compact so the work can "
    "continue with room to spare."
)

_VAR_RE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PERCENT_RE = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def expand_vars(text: str, environ: Mapping[str, str]) -> str:
    """Replace ``${VAR}``; ``$${VAR}`` stays literal. Unset is an error: an empty API key would
    only surface later as a confusing auth failure inside an agent's pane."""

    def sub(m: re.Match[str]) -> str:
        if m[1]:
            return m[0][1:]
        if m[2] not in environ:
            raise ValueError(f"${{{m[2]}}} is not set in the runner's environment")
        return environ[m[2]]

    return _VAR_RE.sub(sub, text)


def agent_env_value(text: str, environ: Mapping[str, str]) -> str:
    """An agent ``env`` value, expanded, refusing anything that would hand it a runner secret.

    Refused: a ``${SLACK_BOT_TOKEN}`` / ``${SLACK_APP_TOKEN}`` reference (whether or not it is
    set right now, so a file that is fine today cannot leak after the token is exported), and a
    value that contains a token's text however it got there (another variable holding a copy, or
    the token pasted in). ``$${SLACK_BOT_TOKEN}`` stays literal and is allowed: it expands to
    nothing inside the agent, which never has the variable.
    """
    for m in _VAR_RE.finditer(text):
        if not m[1] and m[2] in RUNNER_SECRETS:
            what = "Slack token" if m[2] in _SLACK_TOKENS else "database credential"
            raise ValueError(
                f"${{{m[2]}}} is the runner's {what} and never reaches an agent "
                "(give the agent its own credential under another name)"
            )
    value = expand_vars(text, environ)
    for name in RUNNER_SECRETS:
        secret = environ.get(name, "")
        if len(secret) >= _MIN_SECRET_LEN and secret in value:
            raise ValueError(
                f"holds the runner's {name} (the runner's credentials never reach an agent)"
            )
    return value


def token_limit(value: Any) -> int | str:
    """Token thresholds are absolute counts or a share of the model's context window."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    m = _PERCENT_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if m and 0 < float(m[1]) <= 100:
        return f"{m[1]}%"
    raise ValueError(
        f"must be a token count > 0 or a percentage like '70%', got {describe_value(value)}"
    )


def resolve_limit(limit: int | str, context_window: int) -> int:
    """A threshold in tokens: counts as they are, ``"70%"`` as that share of the window."""
    if isinstance(limit, int):
        return limit
    return int(context_window * float(limit.rstrip("%")) / 100)


def comparable(a: int | str, b: int | str) -> tuple[float, float] | None:
    """Two limits as numbers when they are of one kind; a count and a percentage only compare
    once the context window is known, so they are not checked against each other here."""
    if isinstance(a, int) and isinstance(b, int):
        return float(a), float(b)
    if isinstance(a, str) and isinstance(b, str):
        return float(a.rstrip("%")), float(b.rstrip("%"))
    return None


def _weekdays(field: str) -> str:
    """Translate crontab weekday numbers (0 and 7 = Sunday) to names.

    APScheduler 3 numbers weekdays from Monday = 0 even in ``from_crontab``, so ``1-5`` would
    silently mean Tuesday to Saturday; names mean the same thing to both.
    """
    out: list[str] = []
    for part in field.split(","):
        m = re.fullmatch(r"(\*|\d+)(?:-(\d+))?(?:/(\d+))?", part)
        if m is None or (m[1] == "*" and m[3] is None):
            out.append(part)
            continue
        low = 0 if m[1] == "*" else int(m[1])
        high = int(m[2]) if m[2] else (7 if m[1] == "*" or m[3] else low)
        if not 0 <= low <= high <= 7 or int(m[3] or 1) < 1:
            raise ValueError(f"day of week {part!r}: numbers must be 0-7 (0 and 7 are Sunday)")
        out.extend(_WEEKDAYS[d % 7] for d in range(low, high + 1, int(m[3] or 1)))
    return ",".join(dict.fromkeys(out))


def crontab_trigger(expr: str, timezone: str = "UTC") -> Any:
    """An APScheduler CronTrigger meaning exactly what the crontab line means to a person."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(fields)}")
    minute, hour, day, month, weekday = fields
    if not day.startswith("*") and not weekday.startswith("*"):
        # crontab fires when either matches; APScheduler only when both do.
        raise ValueError("day of month and day of week are both set; use two schedules")
    crontab = " ".join([minute, hour, day, month, _weekdays(weekday)])
    return CronTrigger.from_crontab(crontab, timezone=timezone)


def not_blank(value: str) -> str:
    """A text value that must say something (a prompt, a binary name)."""
    if not value.strip():
        raise ValueError("must not be empty")
    return value
