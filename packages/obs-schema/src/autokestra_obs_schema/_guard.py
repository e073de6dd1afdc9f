"""The retention guard: the SQL function that lets retention, and only it, delete audit rows.

register_retention_guard(conn, cutoff_ms=now_ms() - 30 * 86_400_000)
conn.execute("DELETE FROM execution_audit_events WHERE id = ?", (old_id,))
"""

from __future__ import annotations

import apsw

from ._steps import RETENTION_GUARD_FUNCTION


def register_retention_guard(conn: apsw.Connection, cutoff_ms: int) -> None:
    """Allow this connection to delete audit rows whose timestamp is before ``cutoff_ms``.

    Rows at or after the cutoff stay protected: the trigger aborts their deletion.
    """

    def allows(*args: apsw.SQLiteValue) -> int:
        (timestamp,) = args
        return 1 if isinstance(timestamp, int) and timestamp < cutoff_ms else 0

    conn.create_scalar_function(RETENTION_GUARD_FUNCTION, allows, 1, deterministic=True)
