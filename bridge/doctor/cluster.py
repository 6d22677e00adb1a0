"""The multi-host part of ``agentbridge doctor``: the shared database, its schema version,
each host's heartbeat, and agents nobody runs.

Only with a shared store (``AGENTBRIDGE_DATABASE_URL`` or ``store:``); a single box's SQLite
file is covered by the state-dir checks. A host silent for ``host_down_after_seconds`` fails
the check: its agents are unsupervised and their steering waits for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bridge.config.model import Config
from bridge.config.placement import runner_host
from bridge.doctor.check import Check
from bridge.store.engine import database_url, open_store
from bridge.store.hosts import HostBook
from bridge.store.schema import MIGRATIONS


def check_cluster(config: Config, state_dir: Path, environ: Mapping[str, str]) -> list[Check]:
    url = database_url(config.store, environ)
    if not url:
        return []
    try:
        store = open_store(state_dir, config.store, readonly=True, environ=environ)
    except Exception as err:  # psycopg's errors, DNS, refused: all mean the same here
        return [Check("database", False, f"cannot reach the shared store: {err}")]
    try:
        checks = [Check("database", True, f"reachable ({store.describe()})")]
        version = store.schema_version()
        latest = len(MIGRATIONS)
        if version == latest:
            checks.append(Check("schema", True, f"version {version} (current)"))
        elif version < latest:
            checks.append(
                Check(
                    "schema",
                    True,
                    f"version {version} of {latest}: the next runner to start migrates it",
                    warning=True,
                )
            )
        else:
            checks.append(
                Check(
                    "schema",
                    False,
                    f"version {version} is newer than this agentbridge "
                    f"({latest}): upgrade this host",
                )
            )
        me = runner_host(environ)
        timeout = config.host_down_after_seconds
        beats = HostBook(store).hosts() if version >= 5 else []
        placed = {a.host for a in config.agents if a.host}
        for row in beats:
            age = row.age()
            fine = age <= timeout
            what = f"last heartbeat {age:.0f} s ago (version {row.version or '?'})"
            if not fine:
                what += f": down (over {timeout:.0f} s); its agents wait for it"
            checks.append(
                Check(f"host {row.host}", fine, what + (" (this host)" if row.host == me else ""))
            )
        for host in sorted(placed - {r.host for r in beats}):
            checks.append(
                Check(f"host {host}", False, "named by host: but its runner has never started")
            )
        for agent in config.agents:
            if agent.host is None:
                checks.append(
                    Check(
                        "placement",
                        False,
                        "no host: while the store is shared: no runner runs it",
                        agent.slug,
                    )
                )
        return checks
    finally:
        store.close()
