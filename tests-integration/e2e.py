"""Helpers shared by the end-to-end tests: the CLI program, database reads, waiting, processes.

The tests drive Autokestra as a user does (the installed ``workflow`` program, real plugin
processes) and check the database through read-only connections.

    from e2e import WORKFLOW, group_alive, rows, wait_for
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autokestra_obs_schema import open_reader

#: The installed console script of the environment running the tests.
WORKFLOW = str(Path(sys.executable).parent / "workflow")


def rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of one read-only query on the database file ``db``.

    ``db`` may also be a test's folder: the tests keep their database there as ``ak.db``.
    """
    conn = open_reader(db / "ak.db" if db.is_dir() else db)
    try:
        return list(conn.execute(sql, params).fetchall())
    finally:
        conn.close()


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``check`` every 50 ms until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs.

    Zombies do not count: an orphan killed by the engine stays a zombie until some ancestor
    reaps it (PID 1 of a container may never do so), yet it runs nothing.
    """
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False
