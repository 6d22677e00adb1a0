"""``watchdog:``: what the runner does about an agent that has gone quiet on its own.

Kept out of :mod:`bridge.config.model` (which is at its size limit); it is one more agent key
there, folded from ``defaults:`` like every other. Times are minutes (fractions allowed, so a
test can use seconds) except the short grace, which is seconds.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from bridge.config.values import not_blank


class WatchdogConfig(BaseModel):
    """Usage limits, stuck turns and over-long turns: noticed, reported, recovered from."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    stuck_after_minutes: Annotated[float, Field(gt=0)] | None = 10.0
    """A turn ``working`` with no transcript line, no hook and no change on screen for this
    long gets one alert in its thread (with Interrupt / Restart buttons). None: never."""
    max_turn_minutes: Annotated[float, Field(gt=0)] | None = None
    """A turn still running after this long is interrupted (the CLI's interrupt key) and
    reported. None: turns may run as long as they like."""
    continue_prompt: Annotated[str, AfterValidator(not_blank)] = "continue"
    """Sent when a usage limit has reset, before anything queued meanwhile."""
    limit_grace_seconds: Annotated[float, Field(ge=0)] = 30.0
    """Wait this long past the reset time before sending the continue prompt (clocks differ)."""
    limit_fallback_minutes: Annotated[float, Field(gt=0)] = 15.0
    """When the CLI names no reset time (Claude's StopFailure and API-error record do not), wait
    this long, doubling for each further wait in a row of the same limit."""
    limit_fallback_max_minutes: Annotated[float, Field(gt=0)] = 120.0
    """The doubling of ``limit_fallback_minutes`` stops here."""
    limit_warn_percent: Annotated[float, Field(gt=0, lt=100)] | None = None
    """Post one warning per usage window once the CLI reports more than this share used
    (Codex always reports it; Claude only with a subscription login). None: no warning."""


def _empty_is_default(value: Any) -> Any:
    """``watchdog:`` left empty in YAML means all defaults."""
    return {} if value is None else value


Watchdog = Annotated[WatchdogConfig, BeforeValidator(_empty_is_default)]
"""The agent key's type (an empty mapping, or none, is every default)."""
