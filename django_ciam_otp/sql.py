"""What the database behind a connection can do, for the few statements written by hand.

The hot paths (consuming quotas, claiming a delivery) use ``UPDATE …
RETURNING`` to do in one round trip what the ORM does in two; other databases
take the ORM's way.
"""

from __future__ import annotations

from typing import Any


def update_returning_supported(conn: Any) -> bool:
    """``UPDATE ... RETURNING``: PostgreSQL, and SQLite from 3.35."""
    if conn.vendor == "postgresql":
        return True
    if conn.vendor == "sqlite":
        return bool(conn.Database.sqlite_version_info >= (3, 35))
    return False
