"""Fixtures of the console's route tests: a real database file with realistic executions.

Executions come from obs-store's public ``testing`` module (shaped like the engine's: retries,
backoff, masked inputs, stderr tails, hash-chained audit trails); log rows are written here
through the same ``Writer``, with hostile text among them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from autokestra_obs_schema import Writer, open_writer
from autokestra_obs_store.testing import (
    T0,
    failure_execution,
    retry_execution,
    running_execution,
    success_execution,
    write_execution,
)
from autokestra_obs_web import create_app

#: Text a plugin could print to try to run code in the browser or to hide text.
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> \x1b[31mred\x1b[0m \u202egnp.exe'
#: A secret value: the fixtures store it only masked; it must never appear in a response.
SECRET = "s3cr3t-value-4f2a9c1e"


@dataclass(frozen=True)
class Database:
    """The test database, its writer and the ids of the executions in it.

    ``add_logs`` and ``set_state`` write as an engine would (tests reach them through this
    fixture: test modules cannot import conftest under ``--import-mode=importlib``).
    """

    path: Path
    writer: Writer
    success: str
    failure: str
    retry: str
    running: str
    secret: str = SECRET
    hostile: str = HOSTILE

    def add_logs(
        self, execution_id: str, messages: list[tuple[str | None, str, str]], start: int = T0
    ) -> list[int]:
        """Append log rows ``(task_id, level, message)``; return their ids."""
        return add_logs(self.writer, execution_id, messages, start)

    def set_state(self, execution_id: str, state: str, ended: int | None = None) -> None:
        """Move an execution to ``state``."""
        set_state(self.writer, execution_id, state, ended)


def add_logs(
    writer: Writer,
    execution_id: str,
    messages: list[tuple[str | None, str, str]],
    start: int = T0,
) -> list[int]:
    """Append log rows ``(task_id, level, message)``; return their ids."""
    ids: list[int] = []
    with writer.transaction() as conn:
        for offset, (task_id, level, message) in enumerate(messages):
            conn.execute(
                "INSERT INTO execution_logs (execution_id, task_id, attempt, timestamp, level,"
                " source, message, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    execution_id,
                    task_id,
                    1 if task_id else None,
                    start + offset,
                    level,
                    "worker" if task_id is None else "plugin:core/shell.run",
                    message,
                    json.dumps({"n": offset}) if offset == 0 else None,
                ),
            )
            ids.append(conn.last_insert_rowid())
    return ids


def set_state(writer: Writer, execution_id: str, state: str, ended: int | None = None) -> None:
    """Move an execution to ``state`` (as the engine would, minus the audit event)."""
    with writer.transaction(durable=True) as conn:
        conn.execute(
            "UPDATE executions SET state = ?, ended_at = ?, updated_at = ? WHERE execution_id = ?",
            (state, ended, ended or T0, execution_id),
        )


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Writer]:
    """The one writer of a fresh, migrated database file."""
    opened = open_writer(tmp_path / "console.db")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def database(writer: Writer, tmp_path: Path) -> Database:
    """Four executions (success, failure, retries, running) with logs, some hostile."""
    success = success_execution(T0)
    success.inputs = {"since": "2026-11-01", "api_token": "***SECRET***"}
    # A secret plugin input written literally in the file: the engine stores the task's
    # inputs and the source as run with it masked; the console must serve them as stored.
    assert success.tasks[0].inputs is not None
    success.tasks[0].inputs["token"] = "***SECRET***"
    success.workflow_source = (
        "id: etl\ntasks:\n  - id: fetch\n    type: core/http.request\n"
        '    inputs:\n      token: "***SECRET***"\n'
    )
    ids = Database(
        path=tmp_path / "console.db",
        writer=writer,
        success=write_execution(writer, success),
        failure=write_execution(writer, failure_execution(T0 + 60_000)),
        retry=write_execution(writer, retry_execution(T0 + 120_000)),
        running=write_execution(writer, running_execution(T0 + 180_000)),
    )
    add_logs(
        writer,
        ids.success,
        [
            (None, "INFO", "Execution started"),
            ("fetch", "INFO", "GET https://api.example.com/users"),
            ("fetch", "WARN", HOSTILE),
            ("transform", "DEBUG", "rows 42"),
            ("load", "ERROR", "connection reset, retrying"),
            (None, "INFO", "Execution SUCCESS"),
        ],
    )
    add_logs(writer, ids.failure, [("build", "ERROR", "make: *** Error 2")], T0 + 60_000)
    return ids


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    """A client of an open (loopback, no token) console on the test database."""
    with TestClient(create_app(database.path)) as test_client:
        yield test_client


TOKEN = "test-token-0123456789abcdef"


@pytest.fixture
def token_client(database: Database) -> Iterator[TestClient]:
    """A client of a console that requires :data:`TOKEN`."""
    with TestClient(create_app(database.path, token=TOKEN)) as test_client:
        yield test_client
