"""Which database errors may pass by themselves, so the caller tries again instead of failing.

A dropped or refused connection (Postgres restarting, a network blip) and a busy SQLite file
raise ``OperationalError`` on both engines; anything else (a constraint, bad SQL) will fail the
same way every time and is not retried.
"""

from __future__ import annotations

import sqlite3
import sys


def is_transient(err: BaseException) -> bool:
    if isinstance(err, sqlite3.OperationalError):
        return True
    psycopg = sys.modules.get("psycopg")  # loaded only where the Postgres engine is used
    return psycopg is not None and isinstance(err, psycopg.OperationalError)
