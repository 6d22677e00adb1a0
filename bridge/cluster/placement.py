"""The part of the fleet this runner runs (see :mod:`bridge.config.placement` for the rule)."""

from __future__ import annotations

import logging

from bridge.config.model import Config
from bridge.config.placement import owns

log = logging.getLogger("agentbridge.cluster")


def local_fleet(config: Config, host: str, *, shared: bool) -> Config:
    """``config`` with only the agents placed on ``host``: the reconciler, the mirrors, the
    scheduler and the hook server get this, so each acts on its own agents only. Identical
    to ``config`` on a single box whose agents name no other host."""
    mine = [a for a in config.agents if owns(a, host, shared=shared)]
    if len(mine) == len(config.agents):
        return config
    return config.model_copy(update={"agents": mine})


def unplaced(config: Config, *, shared: bool) -> list[str]:
    """Agents nobody runs: no ``host:`` while the store is shared."""
    return [a.slug for a in config.agents if shared and a.host is None]


def warn_unplaced(config: Config, *, shared: bool) -> None:
    for slug in unplaced(config, shared=shared):
        log.error(
            "%s: no host: in %s and the store is shared with other hosts: no runner runs it; "
            "add host: <AGENTBRIDGE_HOST of the machine that should>",
            slug,
            config.path,
        )
