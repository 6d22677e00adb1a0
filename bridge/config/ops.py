"""The ``metrics`` and ``retention`` config keys (model.py is at its size limit)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Metrics(BaseModel):
    """The Prometheus endpoint (bridge/ops/metrics.py): off unless ``listen`` is set. It serves
    figures, not secrets, but names every agent: keep it on loopback (the default host) or behind
    a firewall."""

    listen: str | None = None
    """``PORT`` or ``HOST:PORT`` to serve ``/metrics`` on (HOST defaults to 127.0.0.1), e.g.
    ``9464``; read when the runner starts."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)  # as every config model

    @field_validator("listen", mode="before")
    @classmethod
    def _address(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str):
            port = value.rpartition(":")[2]
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"listen: a port 1-65535, or HOST:PORT, not {value!r}")
        return value

    def address(self) -> tuple[str, int] | None:
        """(host, port) to listen on; None when off."""
        if self.listen is None:
            return None
        host, _, port = self.listen.rpartition(":")
        return (host.strip("[]") or "127.0.0.1"), int(port)


Days = Annotated[float | None, Field(gt=0)]


class Retention(BaseModel):
    """How long old records are kept, in days (null: for ever); pruned every ``every_minutes``
    in small batches (bridge/store/retention.py says what each removes and why that is safe)."""

    ledger_days: Days = 90.0
    """Posted and skipped mirror records, and turn routes. A reply in a thread older than this
    finds its agent by the channel instead of the thread."""
    queue_days: Days = 30.0
    """Prompt-queue rows that ended (an ephemeral agent's task rows are kept)."""
    routed_days: Days = 7.0
    """Handled routed events (several hosts on one store)."""
    audit_days: Days = 365.0
    """Closed questions and approvals, and who answered what."""
    launches_days: Days = 90.0
    """Ended launches of the agents' CLIs."""
    every_minutes: float = Field(default=60.0, gt=0)
    """Minutes between two pruning passes (the first runs a minute after start)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)  # as every config model
