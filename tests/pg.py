"""A real PostgreSQL for the ``postgres`` test tier: one throwaway cluster per test session
(per xdist worker), one fresh database per test.

Import the fixtures into a test module (``from tests.pg import pg_cluster, pg_url``). The server
binaries come from ``deploy/install-postgres.sh`` (tests/run.sh runs it); without them the
tests fail with that hint rather than skip, so CI cannot go green without the tier.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from bridge.devtools.pgcluster import Cluster, NoPostgres

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    try:
        cluster = Cluster().start()
    except NoPostgres as err:
        pytest.fail(str(err))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    """A new, empty database in the session's cluster."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return pg_cluster.create(f"t_{worker}_{os.getpid()}_{next(_numbers)}")
