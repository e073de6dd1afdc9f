"""Whether an engine process recorded in ``executions.engine_pid`` still runs on this host.

Both the engine's crash recovery and the read side's dead-engine check (DESIGN.md §6.4) ask
it; a zombie counts as gone, since it runs nothing.

    pid_alive(os.getpid())   # True
"""

from __future__ import annotations

import os
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    # The state letter follows the parenthesised command name (which may hold spaces).
    end = stat.rfind(")")
    return stat[end + 2 : end + 3] != "Z"
