"""LogCollector under failure: held locks, a full disk, injected faults, a dead database."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import apsw

from autokestra_obs_collector import LogCollector
from autokestra_obs_collector.testing import ManualClock
from autokestra_obs_schema import Writer, connect

Factory = Callable[..., LogCollector]
BIG = "x" * 2000  # big rows: a batch surely needs new pages


@contextmanager
def held_write_lock(db_path: Path, seconds: float) -> Iterator[threading.Thread]:
    """Another connection holds BEGIN IMMEDIATE for ``seconds`` (another process's writer)."""
    ready = threading.Event()

    def hold() -> None:
        other = connect(db_path)
        other.execute("BEGIN IMMEDIATE")
        ready.set()
        time.sleep(seconds)
        other.execute("COMMIT")
        other.close()

    thread = threading.Thread(target=hold)
    thread.start()
    ready.wait(5)
    try:
        yield thread
    finally:
        thread.join()


def pin_page_count(writer: Writer) -> None:
    """Disk full: SQLite clamps max_page_count to the current size, so nothing can grow."""
    with writer.locked() as conn:
        conn.execute("PRAGMA max_page_count = 1")


def unpin_page_count(writer: Writer) -> None:
    with writer.locked() as conn:
        conn.execute("PRAGMA max_page_count = 4294967294")


def logs_dropped(writer: Writer, execution_id: str) -> int:
    """``executions.logs_dropped`` as committed."""
    reader = connect(writer.path, readonly=True)
    try:
        row = reader.execute(
            "SELECT logs_dropped FROM executions WHERE execution_id = ?", (execution_id,)
        ).fetchall()
        return int(str(row[0][0]))
    finally:
        reader.close()


def committed_rows(db_path: Path) -> int:
    """Rows visible to another connection: what is really committed."""
    reader = connect(db_path, readonly=True)
    try:
        return int(str(reader.execute("SELECT count(*) FROM execution_logs").fetchall()[0][0]))
    finally:
        reader.close()


class TestHeldLock:
    def test_two_second_lock_loses_nothing(
        self, make_collector: Factory, view: Any, db_path: Path
    ) -> None:
        """Entries logged while another connection holds the write lock for 2 s all arrive."""
        collector = make_collector()
        with held_write_lock(db_path, 2.0):
            for i in range(3000):
                collector.log("exec-1", "INFO", "worker", f"line {i}")
                if i % 300 == 0:
                    time.sleep(0.05)
        assert collector.flush(timeout=15)
        assert view.messages("exec-1") == [f"line {i}" for i in range(3000)]
        assert view.count("exec-1") == 3000
        assert collector.stats().dropped == 0

    def test_busy_past_the_timeout_is_one_episode(
        self,
        make_collector: Factory,
        view: Any,
        writer: Writer,
        db_path: Path,
        report: io.StringIO,
    ) -> None:
        """With a short busy timeout the lock makes writes fail: reported once, then recovery."""
        writer.connection.set_busy_timeout(50)
        collector = make_collector(retry_initial_s=0.02, retry_max_s=0.2)
        with held_write_lock(db_path, 2.0):
            for i in range(500):
                collector.log("exec-1", "INFO", "worker", f"line {i}")
            time.sleep(0.5)  # several retries happen while the lock is held
        assert collector.flush(timeout=10)
        assert len(view.rows("exec-1")) == 500
        text = report.getvalue()
        assert text.count("cannot write logs") == 1
        assert "busy" in text.lower()
        assert text.count("recovered") == 1
        assert collector.stats().failures >= 2


class TestWriteFaults:
    def test_disk_full_keeps_the_batch_and_writes_it_later(
        self,
        make_collector: Factory,
        view: Any,
        writer: Writer,
        db_path: Path,
        report: io.StringIO,
    ) -> None:
        """SQLITE_FULL mid-batch commits none of it; after space returns it is all written."""
        collector = make_collector(clock=ManualClock(), retry_initial_s=0.01, retry_max_s=0.05)
        pin_page_count(writer)
        for i in range(100):
            collector.log("exec-1", "INFO", "worker", f"{i} {BIG}")
        deadline = time.monotonic() + 5
        while collector.stats().failures < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert collector.stats().failures >= 3
        assert committed_rows(db_path) == 0
        unpin_page_count(writer)
        assert collector.flush(timeout=10)
        assert [m.split()[0] for m in view.messages("exec-1")] == [str(i) for i in range(100)]
        assert view.count("exec-1") == 100
        text = report.getvalue()
        assert text.count("cannot write logs") == 1
        assert "full" in text.lower()
        assert text.count("recovered") == 1

    def test_fault_in_the_middle_of_a_batch(
        self, make_collector: Factory, view: Any, writer: Writer
    ) -> None:
        """A fault at the 50th row rolls the whole batch back; the retry writes it exactly once."""
        seen: list[str] = []
        faults = {"left": 1}

        def inject(*args: apsw.SQLiteValue) -> int:
            seen.append(str(args[0]))
            if args[0] == "line 49" and faults["left"]:
                faults["left"] -= 1
                raise OSError("injected I/O fault")
            return 0

        with writer.locked() as conn:
            conn.create_scalar_function("inject_fault", inject, 1)
            conn.execute(
                "CREATE TEMP TRIGGER fault_mid_batch BEFORE INSERT ON main.execution_logs"
                " BEGIN SELECT inject_fault(NEW.message); END"
            )
        collector = make_collector(clock=ManualClock(), retry_initial_s=0.01)
        for i in range(100):
            collector.log("exec-1", "INFO", "worker", f"line {i}")
        assert collector.flush(timeout=10)
        assert seen[:50] == [f"line {i}" for i in range(50)]  # the fault hit mid-batch
        assert view.messages("exec-1") == [f"line {i}" for i in range(100)]
        assert view.count("exec-1") == 100
        assert collector.stats().failures == 1

    def test_unknown_execution_is_refused_alone(
        self, make_collector: Factory, view: Any, report: io.StringIO
    ) -> None:
        """An entry of a missing execution is dropped and reported; its batch-mates are kept."""
        collector = make_collector(clock=ManualClock())
        collector.log("exec-1", "INFO", "worker", "before")
        collector.log("ghost", "INFO", "worker", "orphan")
        collector.log("exec-1", "INFO", "worker", "after")
        assert collector.flush(timeout=5)
        assert view.messages() == ["before", "after"]
        assert view.count("exec-1") == 2
        assert collector.stats().dropped == 1
        assert "1 log entries refused" in report.getvalue()


class TestPersistentFailure:
    def test_drops_only_what_it_reports(
        self,
        make_collector: Factory,
        view: Any,
        writer: Writer,
        report: io.StringIO,
    ) -> None:
        """A full buffer on a failing database drops entries; the WARN states exactly how many."""
        collector = make_collector(
            clock=ManualClock(),
            max_buffer=50,
            put_timeout_s=0.2,
            retry_initial_s=0.01,
            retry_max_s=0.05,
        )
        pin_page_count(writer)
        started = time.monotonic()
        for i in range(300):
            collector.log("exec-1", "INFO", "worker", f"{i} {BIG}")
        assert time.monotonic() - started < 3  # one deadline wait, not one per entry
        dropped = collector.stats().dropped
        assert 0 < dropped < 300
        unpin_page_count(writer)
        assert collector.flush(timeout=10)
        rows = view.rows("exec-1")
        kept = [r for r in rows if r[6] == "worker"]
        warns = [r for r in rows if r[6] == "engine"]
        assert len(kept) == 300 - dropped
        assert len(warns) == 1
        assert warns[0][5] == "WARN"
        assert warns[0][2] is None  # no task: the execution level
        assert warns[0][7].startswith(
            f"Dropped {dropped} log entries: the log buffer was full while the database "
            "could not be written (Database or disk is full"
        )
        assert logs_dropped(writer, "exec-1") == dropped
        by_id = sorted(rows)
        assert [r[4] for r in by_id] == sorted(r[4] for r in by_id)  # ids follow timestamps
        assert view.count("exec-1") == len(rows)
        numbers = [int(r[7].split()[0]) for r in kept]
        assert numbers == sorted(numbers)  # what survived is in order
        text = report.getvalue()
        assert text.count("dropping log entries") == 1
        assert text.count("cannot write logs") == 1

    def test_shutdown_on_a_dead_database_returns_and_reports(
        self, writer: Writer, report: io.StringIO
    ) -> None:
        """shutdown(timeout) returns near its deadline and reports what was lost."""
        collector = LogCollector(
            writer, clock=ManualClock(), report=report, retry_initial_s=0.01, retry_max_s=0.05
        )
        pin_page_count(writer)
        for i in range(20):
            collector.log("exec-1", "INFO", "worker", f"{i} {BIG}")
        started = time.monotonic()
        collector.shutdown(timeout=0.3)
        assert time.monotonic() - started < 2
        # Halved transactions may fit a few entries into the pages' free space.
        stored = committed_rows(writer.path)
        assert stored < 20
        assert f"{20 - stored} log entries could not be written before shutdown" in (
            report.getvalue()
        )
        assert collector.stats().dropped == 20 - stored
        unpin_page_count(writer)

    def test_log_never_raises_on_a_closed_writer(self, db_path: Path, report: io.StringIO) -> None:
        """With the writer closed under it, log() still returns and the failure is reported."""
        writer = Writer(db_path)
        collector = LogCollector(
            writer, report=report, max_batch=1, retry_initial_s=0.01, retry_max_s=0.02
        )
        writer.close()
        for i in range(10):
            collector.log("exec-1", "INFO", "worker", f"line {i}")
        deadline = time.monotonic() + 5
        while "cannot write logs" not in report.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "Writer is closed" in report.getvalue()
        collector.shutdown(timeout=0.2)
