"""Which engine a runner (or a CLI command) opens: SQLite by default, Postgres when asked.

``AGENTBRIDGE_DATABASE_URL`` wins over the config's ``store:`` key, so a host can point at its
database without editing the shared agents.yaml (and keep the password out of it). Without
either, the store is today's SQLite file in the state dir, unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from bridge.config import paths
from bridge.store.db import Store
from bridge.store.schema import MIGRATIONS

DATABASE_ENV = "AGENTBRIDGE_DATABASE_URL"


def database_url(configured: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The Postgres URL this runner should use, or None for the embedded SQLite file."""
    env = os.environ if environ is None else environ
    return env.get(DATABASE_ENV) or configured or None


def open_store(
    state_dir: Path,
    configured: str | None = None,
    *,
    readonly: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Store:
    url = database_url(configured, environ)
    if url:
        from bridge.store.pg import PgStore  # psycopg only where it is used

        return PgStore(url, readonly=readonly)
    return Store(paths.db_path(state_dir), readonly=readonly)


def store_exists(state_dir: Path, configured: str | None = None) -> bool:
    """Whether there is anything to read (a read-only status on a fresh box has none)."""
    return bool(database_url(configured)) or paths.db_path(state_dir).exists()


def open_view(
    state_dir: Path,
    configured: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Store | None:
    """A read-only store for ``status`` and ``doctor``, or None while there is nothing whole
    to read: no database yet, or one a runner is still creating or upgrading (fewer
    migrations applied than this version knows; its tables may not all exist yet)."""
    if not store_exists(state_dir, configured):
        return None
    store = open_store(state_dir, configured, readonly=True, environ=environ)
    if store.schema_version() < len(MIGRATIONS):
        store.close()
        return None
    return store
