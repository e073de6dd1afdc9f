"""LogStore against a plain-Python model: any filter, on a log spanning several pages.

The database is built once per module (2.5 pages of one execution, with bursts of equal
timestamps, interleaved with a second execution's rows); Hypothesis then draws filters and
checks the store's answer, and a follower's, against filtering and sorting in Python.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autokestra_obs_schema import open_reader, open_writer
from autokestra_obs_store import LogFilter, LogRecord, LogStore
from autokestra_obs_store._log_sql import PAGE_SIZE

LEVELS = ("DEBUG", "INFO", "WARN", "ERROR")
TASKS = (None, "build", "test", "deploy")
SOURCES = ("scheduler", "worker", "plugin:core/shell.run", "plugin:acme/text.upper")
# Letters LIKE and casefold agree on, plus the LIKE metacharacters, a quote and an accent.
WORDS = ("alpha", "Beta", "GAMMA", "50%", "a_b", "C:\\tmp", "it's", "école", "ÉCOLE")
MAIN, OTHER = "e-main", "e-other"
MAIN_ROWS = PAGE_SIZE * 3 + 123

Row = tuple[str, str | None, int | None, int, str, str, str, str | None]


def model_rows(rng: random.Random) -> list[Row]:
    """The rows to insert, in insertion (id) order: timestamps deliberately not monotonic."""
    rows: list[Row] = []
    for n in range(MAIN_ROWS):
        execution = MAIN if n % 5 else OTHER  # the other execution's ids interleave
        task = rng.choice(TASKS)
        metadata = json.dumps({"n": n, "word": rng.choice(WORDS)}) if n % 13 == 0 else None
        rows.append(
            (
                execution,
                task,
                None if task is None else rng.randint(1, 3),
                rng.randint(0, 400),  # about 8 entries per millisecond: many ties
                rng.choice(LEVELS),
                rng.choice(SOURCES),
                f"{n} " + " ".join(rng.choices(WORDS, k=3)),
                metadata,
            )
        )
    return rows


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LogStore, list[LogRecord]]]:
    """The store over the built database, and every stored record (read back by id)."""
    path: Path = tmp_path_factory.mktemp("model") / "model.db"
    writer = open_writer(path)
    with writer.transaction() as conn:
        conn.executemany(
            "INSERT INTO executions (execution_id, workflow_id, state, created_at, updated_at)"
            " VALUES (?, 'wf', 'SUCCESS', 0, 0)",
            [(MAIN,), (OTHER,)],
        )
        conn.executemany(
            "INSERT INTO execution_logs (execution_id, task_id, attempt, timestamp, level,"
            " source, message, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            model_rows(random.Random(20261126)),
        )
    writer.close()
    reader: apsw.Connection = open_reader(path)
    stored = [
        LogRecord(row)
        for row in reader.execute(
            "SELECT id, execution_id, task_id, attempt, timestamp, level, source, message,"
            " metadata FROM execution_logs ORDER BY id"
        )
    ]
    yield LogStore(reader), stored
    reader.close()


def expected(stored: list[LogRecord], execution_id: str, flt: LogFilter) -> list[LogRecord]:
    """What the store must answer, computed in Python."""
    kept = [
        r
        for r in stored
        if r.execution_id == execution_id
        and (flt.levels is None or r.level in flt.levels)
        and (flt.since_ms is None or r.timestamp >= flt.since_ms)
        and (flt.task_id is None or r.task_id == flt.task_id)
        and (not flt.source or r.source.startswith(flt.source))
        and (not flt.text or flt.text.casefold() in r.message.casefold())
        and (flt.attempt is None or r.attempt == flt.attempt)
    ]
    kept.sort(key=lambda r: (r.timestamp, r.id))
    return kept if flt.tail is None else kept[-flt.tail :]


filters = st.builds(
    LogFilter,
    levels=st.none() | st.frozensets(st.sampled_from(LEVELS), min_size=1),
    since_ms=st.none() | st.integers(min_value=-5, max_value=410),
    task_id=st.none() | st.sampled_from([t for t in TASKS if t is not None] + ["nope"]),
    source=st.none() | st.sampled_from(["", "plugin", "plugin:core", "work", "Worker"]),
    text=st.none() | st.sampled_from(["", "alpha", "BETA", "%", "_", "a_b", "\\t", "'", "éc"]),
    attempt=st.none() | st.integers(min_value=1, max_value=4),
    tail=st.none() | st.sampled_from([1, 7, 100, PAGE_SIZE, PAGE_SIZE + 1, 2_500, 10**6]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flt=filters, execution_id=st.sampled_from([MAIN, OTHER]))
def test_store_answers_what_the_model_does(
    model: tuple[LogStore, list[LogRecord]], flt: LogFilter, execution_id: str
) -> None:
    """Every filter combination: exactly the matching records, in (timestamp, id) order."""
    store, stored = model
    assert list(store.logs_for_execution(execution_id, flt)) == expected(stored, execution_id, flt)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flt=filters)
def test_following_an_ended_execution_answers_the_same(
    model: tuple[LogStore, list[LogRecord]], flt: LogFilter
) -> None:
    """A follower of a finished execution prints what a plain query prints, then ends."""
    store, stored = model
    assert list(store.follow(MAIN, flt, poll_s=0.001)) == expected(stored, MAIN, flt)


def test_the_model_spans_several_pages(model: tuple[LogStore, list[LogRecord]]) -> None:
    """The checks above can fail on paging: the main execution fills more than two pages."""
    _, stored = model
    mine = [r for r in stored if r.execution_id == MAIN]
    assert len(mine) > 2 * PAGE_SIZE
    timestamps = [r.timestamp for r in mine]
    assert len(set(timestamps)) < len(timestamps) // 4  # bursts of equal timestamps
    assert timestamps != sorted(timestamps)  # id order is not time order
