"""The ``metrics`` config keys (model.py is at its size limit)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator


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
