"""Is the engine running an execution still there? The read side's answer (DESIGN.md §6.4).

A command that waits for an execution (``logs --follow``, ``inspect`` of a running one) must
not wait forever for an engine that was killed. The ``executions`` row names its engine
(``engine_pid``, ``engine_host``) and the engine refreshes ``heartbeat_at`` every few seconds.
On the engine's own host the pid is checked (a SIGKILLed engine is seen at the next poll);
on another host the pid means nothing, so a heartbeat older than :data:`STALE_HEARTBEAT_MS`
is the sign. Only the engine writes the verdict (FAILED, ``ENGINE_LOST``) at its next start:
this module never writes.

    gone = engine_gone(conn, execution_id)
    if gone is not None:
        raise gone           # Error: the engine running execution ... is gone (...)
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import apsw

from autokestra_obs_schema import TERMINAL_STATES, AutokestraError, iso_from_ms, now_ms, pid_alive

#: A heartbeat older than this means an engine on another host is gone (the engine beats
#: every 5 s: six missed beats).
STALE_HEARTBEAT_MS = 30_000

_SELECT = (
    "SELECT state, engine_pid, engine_host, heartbeat_at, started_at, created_at"
    " FROM executions WHERE execution_id = ?"
)


class EngineGone(AutokestraError):
    """The engine process running an unfinished execution is gone.

    Attributes:
        execution_id: the execution.
        last_heartbeat_ms: its engine's last heartbeat (Unix ms), or its start time.
    """

    def __init__(self, execution_id: str, last_heartbeat_ms: int) -> None:
        self.execution_id = execution_id
        self.last_heartbeat_ms = last_heartbeat_ms
        super().__init__(
            f"the engine running execution {execution_id} is gone (last heartbeat "
            f"{iso_from_ms(last_heartbeat_ms)}); the next `workflow server start` or "
            "`workflow run` marks it FAILED (ENGINE_LOST)"
        )


def engine_gone(
    conn: apsw.Connection,
    execution_id: str,
    *,
    host: str | None = None,
    clock: Callable[[], int] = now_ms,
    alive: Callable[[int], bool] = pid_alive,
) -> EngineGone | None:
    """The :class:`EngineGone` of an unfinished execution whose engine is gone, else None.

    None too for a finished execution, an unknown id, and one no engine has claimed yet (a
    ``run --detach`` waiting for ``server start`` is queued, not lost).

    Args:
        conn: a read-only connection.
        execution_id: the execution.
        host: this host's name (default ``socket.gethostname()``).
        clock: Unix-ms clock (for the heartbeat age).
        alive: pid check (injectable for tests).
    """
    rows: list[tuple[Any, ...]] = conn.execute(_SELECT, (execution_id,)).fetchall()
    if not rows:
        return None
    state, pid, engine_host, heartbeat, started_at, created_at = rows[0]
    if state in TERMINAL_STATES or pid is None:
        return None
    last = int(heartbeat if heartbeat is not None else (started_at or created_at))
    here = socket.gethostname() if host is None else host
    if engine_host == here:
        return None if alive(int(pid)) else EngineGone(execution_id, last)
    if clock() - last > STALE_HEARTBEAT_MS:
        return EngineGone(execution_id, last)
    return None
