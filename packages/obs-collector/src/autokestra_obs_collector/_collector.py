"""The buffered log collector: many producers, one flush thread, one transaction per batch.

Producers (scheduler, workers, capture sinks) call :meth:`LogCollector.log`, which redacts,
stamps and appends to a bounded buffer and never raises. One background thread writes the
buffer through the process's ``Writer`` when it holds ``max_batch`` entries or its oldest
entry is ``max_age_s`` old; under a backlog one transaction takes up to ``max_txn_entries``.
Failed writes are kept and retried with backoff; entries that cannot be kept are counted per
execution and explained by one stored WARN entry (DESIGN.md §6.1); see ``docs/logging.md``.

    collector = LogCollector(writer)
    collector.log(execution_id, LogLevel.INFO, "scheduler", "execution started")
    outcome = collector.end_execution(execution_id)   # on disk, or its drops recorded
    collector.shutdown()
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from autokestra_obs_schema import (
    LogLevel,
    StorageError,
    StorageFull,
    Writer,
    now_ms,
)

from ._entry import LogEntry
from ._redact import Redactor
from ._rows import (
    LEVEL_NAMES,
    Row,
    metadata_json,
    parse_level,
    write_drop_summary,
    write_rows,
)
from ._stats import CollectorStats, percentile

#: Source of the entries the collector writes about itself: the WARN that counts dropped
#: entries speaks for the engine process as a whole (DESIGN.md §6.1).
COLLECTOR_SOURCE = "engine"
_COMMIT_SAMPLES = 4096
#: Longest pause of the flush thread while producers released from a full buffer refill it.
_REFILL_S = 0.02
#: Longest wait of a producer for the commit in flight while a backlog is being written.
_PACE_S = 0.1

#: Told of every committed batch, from the flush thread: the entries as stored (redacted,
#: the ones the database refused left out) and the transaction's duration in seconds.
StoredListener = Callable[[Sequence[LogEntry], float], None]


@dataclass(slots=True)
class _Drops:
    """Entries of one execution dropped and not yet counted in a stored WARN entry."""

    count: int = 0
    reasons: list[str] = field(default_factory=list)

    def add(self, reason: str) -> None:
        self.count += 1
        if reason not in self.reasons:
            self.reasons.append(reason)


@dataclass(frozen=True, slots=True)
class LogOutcome:
    """What became of an execution's log entries, from :meth:`LogCollector.end_execution`.

    Attributes:
        dropped: entries of the execution this collector could not store.
        unrecorded: of those, how many are not yet counted in ``executions.logs_dropped``
            (with their WARN entry): the database could not take even that small write.
    """

    dropped: int
    unrecorded: int

    @property
    def complete(self) -> bool:
        """True when every entry is stored or counted in a stored WARN entry."""
        return self.unrecorded == 0


class LogCollector:
    """Buffers log entries of any number of threads and writes them in batches.

    Thread-safe. ``log()`` never raises into the caller and blocks only while the buffer is
    full, at most ``put_timeout_s``. Do not call ``log()``, ``flush()`` or
    ``flush_execution()`` while holding ``writer.transaction()``: the flush thread needs the
    writer, so a full buffer or a flush would wait out its deadline.
    """

    # One assignment per piece of the collector's state: split up, a reader would have to
    # gather what a collector holds from several places.
    def __init__(  # noqa: PLR0915
        self,
        writer: Writer,
        *,
        max_batch: int = 100,
        max_age_s: float = 1.0,
        max_buffer: int = 10_000,
        clock: Callable[[], int] = now_ms,
        report: TextIO | None = None,
        max_txn_entries: int = 1000,
        put_timeout_s: float = 5.0,
        retry_initial_s: float = 0.05,
        retry_max_s: float = 2.0,
        mask_token_shapes: bool = True,
    ) -> None:
        """Start a collector and its flush thread.

        Args:
            writer: the process's one ``Writer``.
            max_batch: write when this many entries are buffered.
            max_age_s: write when the oldest buffered entry is this old (by ``clock``).
            max_buffer: the most entries buffered; producers wait when it is full.
            clock: Unix milliseconds for timestamps and ages (inject one in tests).
            report: where failure episodes are reported (default ``sys.stderr``).
            max_txn_entries: the most entries one transaction takes from a backlog.
            put_timeout_s: how long ``log()`` waits for room before dropping an entry.
            retry_initial_s: first backoff after a failed write (doubles each failure).
            retry_max_s: the longest backoff.
            mask_token_shapes: mask credential shapes (PEM private keys, AWS key ids, GitHub
                tokens, JWTs) in entries of executions without a redactor of their own
                (config ``logging.mask_token_shapes``); a redactor set with
                :meth:`set_redactor` decides for its execution.
        """
        if max_batch < 1 or max_buffer < 1 or max_txn_entries < 1:
            raise ValueError("max_batch, max_buffer and max_txn_entries must be positive")
        self._writer = writer
        # A buffer smaller than a batch must still flush when it is full.
        self._max_batch = min(max_batch, max_buffer)
        self._max_age_ms = max(0, int(max_age_s * 1000))
        self._max_buffer = max_buffer
        self._resume_level = max_buffer // 2
        # Pacing starts when two full transactions are waiting (a backlog, not a trickle).
        self._pace_level = min(max_buffer, 2 * max(max_txn_entries, max_batch))
        self._max_txn = max(max_txn_entries, max_batch)
        self._clock = clock
        self._report_stream = report
        self._put_timeout_s = put_timeout_s
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s

        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # room freed / entries written
        self._wake = threading.Event()
        self._stop = threading.Event()  # interrupts backoff waits at shutdown
        self._buffer: deque[Row] = deque()
        self._redactors: dict[str, Redactor] = {}
        self._default_redactor = Redactor() if mask_token_shapes else None
        self._last_ts = 0
        self._logged = 0  # sequence number of the last buffered entry
        self._done = 0  # entries written or refused, in buffer order
        self._taken = 0  # entries moved from the buffer to the flush thread
        self._force = 0  # flush everything up to this sequence number regardless of age
        self._written = 0
        self._dropped = 0
        self._pending_drops: dict[str, _Drops] = {}  # dropped, not yet in a stored WARN
        self._dropped_by_execution: dict[str, int] = {}  # every drop, until end_execution
        self._inflight: list[Row] = []  # the batch the flush thread is writing
        self._last_failure = "the database could not be written"
        self._summary_failing = False
        self._transactions = 0
        self._failures = 0
        self._commit_ms: deque[float] = deque(maxlen=_COMMIT_SAMPLES)
        self._closing = False
        self._abandoned = False
        self._shutdown_done = False
        self._shedding = False  # an episode of dropped entries is in progress
        self._signaled = False  # the flush thread was woken since it last looked
        self._waiting = 0  # producers blocked on a full buffer
        self._pacing = 0  # producers pausing for the commit in flight
        self._refill_until = 0.0  # monotonic deadline of a refill pause (0: none)
        self._pace_off = False  # a paced producer saw no commit in time: stop pacing
        self._failing = False  # the flush thread is in a failure episode
        self._stopped = False  # the flush thread has exited
        self._listeners: tuple[StoredListener, ...] = ()
        self._thread = threading.Thread(
            target=self._run, name="autokestra-log-collector", daemon=True
        )
        self._thread.start()

    # -- producers ------------------------------------------------------------------------

    def set_redactor(self, execution_id: str, redactor: Redactor) -> None:
        """Redact every later entry of ``execution_id`` with ``redactor``."""
        self._redactors[execution_id] = redactor

    def clear_redactor(self, execution_id: str) -> None:
        """Forget the execution's redactor (call after its last entry was logged)."""
        self._redactors.pop(execution_id, None)

    def add_listener(self, listener: StoredListener) -> None:
        """Tell ``listener(entries, seconds)`` of every batch committed from now on.

        Called from the flush thread after the commit, so it must return at once (queue the
        entries; do the work elsewhere). A listener that raises is reported once and removed:
        telemetry never stops logging. Without listeners a commit costs nothing more.
        """
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def log(
        self,
        execution_id: str,
        level: LogLevel | str,
        source: str,
        message: str,
        *,
        task_id: str | None = None,
        attempt: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Buffer one entry; redacted with the execution's redactor first. Never raises.

        Args:
            execution_id: the execution (its ``executions`` row must exist by flush time).
            level: a ``LogLevel`` or its name in any case (an unknown name logs as INFO).
            source: ``scheduler``, ``worker``, ``plugin:<ns>/<plugin>.<action>``...
            message: the text; secrets are masked before it is buffered.
            task_id: the task, or ``None`` for an execution-level entry.
            attempt: the task attempt, or ``None``.
            metadata: JSON-serializable extra data, redacted recursively.
        """
        # The hot path of a flood: kept flat (no helper calls on the common path), because
        # producer time is GIL time the flush thread cannot use.
        try:
            level_name = LEVEL_NAMES.get(level)
            if level_name is None:
                level_name = parse_level(level)
            if message.__class__ is not str:
                message = str(message)
            redactor = self._redactors.get(execution_id, self._default_redactor)
            if redactor is not None:
                message = redactor.redact(message)
                if metadata is not None:
                    metadata = redactor.redact_value(metadata)
            meta_json = None if metadata is None else metadata_json(metadata)
            signal = False
            with self._lock:
                if self._stopped:
                    self._count_drop(
                        execution_id,
                        "log() called after the collector shut down",
                        "logged after the log collector shut down",
                    )
                    return
                buffer = self._buffer
                if len(buffer) >= self._max_buffer:
                    if not self._wait_for_room():
                        self._count_drop(
                            execution_id,
                            "log buffer full and the database is not writable: dropping log "
                            "entries until writes succeed (the count will be logged)",
                            "the log buffer was full while the database could not be "
                            f"written ({self._last_failure})",
                        )
                        return
                elif len(buffer) + self._taken - self._done >= self._pace_level:
                    # A backlog (buffered + in flight): let the transaction in flight commit.
                    self._pace()
                # Stamped under the lock, in buffer order: ids follow timestamps.
                ts = self._clock()
                ts = max(ts, self._last_ts)
                self._last_ts = ts
                buffer.append(
                    (execution_id, task_id, attempt, ts, level_name, source, message, meta_json)
                )
                self._logged += 1
                if not self._signaled:
                    size = len(buffer)
                    if (
                        size == 1
                        or size >= self._max_batch
                        or ts - buffer[0][3] >= self._max_age_ms
                    ):
                        # Once per flush-thread look at the buffer: Event.set is not free.
                        self._signaled = signal = True
            if signal:
                self._wake.set()
        except Exception as exc:  # the one promise of log(): never break the caller
            self._report(f"autokestra: a log entry could not be buffered ({exc!r}); dropped")
            with self._lock:
                self._count_drop(
                    execution_id,
                    "log entries could not be buffered; dropping",
                    f"they could not be buffered ({type(exc).__name__})",
                )

    def _pace(self) -> None:
        """Under a backlog, wait (lock held) for the next commit, briefly; never drops.

        Producers that run while the flush thread is inside SQLite make it queue for the GIL
        after every SQLite call (apsw releases it around each one): a flood then writes at a
        fraction of its speed and commits take tens of milliseconds. Pausing producers until
        the transaction in flight commits lets the two alternate instead. When the database
        is failing, or a commit does not come within ``_PACE_S``, pacing is off until the next
        commit, so a stuck write costs a producer one short pause, not one per entry.
        """
        if self._pace_off or self._failing or self._closing:
            return
        target = self._done
        deadline = time.monotonic() + _PACE_S
        self._pacing += 1
        self._wake.set()
        try:
            while self._done == target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopped or self._failing:
                    self._pace_off = True
                    return
                self._changed.wait(remaining)
        finally:
            self._pacing -= 1

    def _wait_for_room(self) -> bool:
        """Wait (lock held) until the buffer has room; ``False`` at the deadline.

        While an episode of drops is in progress nobody waits: one producer already waited
        the whole deadline, and making every entry wait again would stall the engine.
        """
        if self._shedding or self._abandoned:
            return False
        self._waiting += 1
        try:
            return self._wait_until_resumed()
        finally:
            self._waiting -= 1

    def _wait_until_resumed(self) -> bool:
        deadline = time.monotonic() + self._put_timeout_s
        # Hysteresis: once full, wait until half of it is written, for the reason in _pace.
        while len(self._buffer) > self._resume_level:
            self._wake.set()
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._gave_up():
                return False
            self._changed.wait(remaining)
        return True

    def _gave_up(self) -> bool:
        """Another producer started dropping, or the flush thread is gone (lock held)."""
        return self._shedding or self._abandoned or self._stopped

    def _count_drop(self, execution_id: str, why: str, reason: str, count: int = 1) -> None:
        """Count lost entries (lock held); reported on stderr once per episode.

        Args:
            execution_id: whose entries were lost.
            why: the stderr line, once per episode.
            reason: the cause as the stored WARN entry states it.
            count: how many entries.
        """
        self._dropped += count
        self._dropped_by_execution[execution_id] = (
            self._dropped_by_execution.get(execution_id, 0) + count
        )
        drops = self._pending_drops.setdefault(execution_id, _Drops())
        for _ in range(count):
            drops.add(reason)
        if not self._shedding:
            self._shedding = True
            self._report(f"autokestra: {why}")

    # -- flushing -------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Write every entry buffered before the call, whatever its age.

        Args:
            timeout: seconds to wait; ``None`` waits until done.

        Returns:
            ``True`` when all of them were written (or refused by a constraint and counted),
            ``False`` at the timeout.
        """
        with self._lock:
            target = self._logged
            if self._done >= target:
                return True
            self._force = max(self._force, target)
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._done < target:
                if self._stopped:
                    return False
                if deadline is None:
                    self._changed.wait(0.5)
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 0.5))
            return True

    def flush_execution(self, execution_id: str, timeout: float = 10.0) -> bool:
        """Synchronously write every buffered entry of ``execution_id`` (and older ones).

        Call it when an execution ends, before reporting it terminal.

        Args:
            execution_id: the execution that ended.
            timeout: seconds to wait.

        Returns:
            ``True`` when its entries are on disk; ``False`` at the timeout.
        """
        with self._lock:
            if not any(row[0] == execution_id for row in self._buffer) and self._done >= (
                self._taken
            ):
                return True
        return self.flush(timeout)

    def end_execution(
        self,
        execution_id: str,
        timeout: float = 10.0,
        *,
        make_room: Callable[[], bool] | None = None,
    ) -> LogOutcome:
        """Finish an execution's log: store its entries, or count and record what cannot be.

        Call it when the execution ends, before its terminal state is reported. It writes the
        execution's buffered entries (up to ``timeout``); entries still unwritable then are
        taken out of the buffer and counted as dropped; then one WARN entry
        ``Dropped <n> log entries: <reason>`` (source ``engine``) and ``logs_dropped`` are
        stored in one small transaction of their own, which often fits where a batch did not.
        What still cannot be recorded is left for :meth:`take_unrecorded_drops`.

        Args:
            execution_id: the execution that ended.
            timeout: seconds to wait for its entries to be written.
            make_room: called once when the WARN entry fails for lack of space (the
                engine's ``StorageReserve.release``); ``True`` means retry, space was freed.

        Returns:
            How many entries were dropped and how many of those are not yet recorded.
        """
        if not self.flush_execution(execution_id, timeout):
            self._drop_unwritten(execution_id)
        self._store_summaries(execution_id, make_room=make_room)
        with self._lock:
            dropped = self._dropped_by_execution.pop(execution_id, 0)
            pending = self._pending_drops.get(execution_id)
            return LogOutcome(dropped=dropped, unrecorded=pending.count if pending else 0)

    def take_unrecorded_drops(self, execution_id: str) -> int:
        """Hand the caller the drops of an ended execution whose WARN entry could not be stored.

        When even that small transaction fails (a per-file size limit where the log index
        needs new pages), the engine stores the count with the terminal state instead
        (``executions.logs_dropped``); from here on the collector no longer retries it, so
        the count is never added twice. The explanation then goes to stderr.

        Returns:
            How many dropped entries the caller must record (0: nothing pending).
        """
        with self._lock:
            drops = self._pending_drops.pop(execution_id, None)
        if drops is None or not drops.count:
            return 0
        self._report(
            f"autokestra: {drops.count} dropped log entries of execution {execution_id} go "
            "into executions.logs_dropped with its end state; their WARN entry could not be "
            f"stored ({'; '.join(drops.reasons)})"
        )
        return drops.count

    def _drop_unwritten(self, execution_id: str) -> None:
        """Take an ended execution's unwritable entries out of the buffer and the batch.

        Holding the writer lock first means the flush thread is between two attempts: a row
        is then either already written or removed here and counted, never both.
        """
        try:
            with self._writer.locked(), self._lock:
                kept = [row for row in self._buffer if row[0] != execution_id]
                from_buffer = len(self._buffer) - len(kept)
                self._buffer.clear()
                self._buffer.extend(kept)
                in_flight = [row for row in self._inflight if row[0] != execution_id]
                from_batch = len(self._inflight) - len(in_flight)
                self._inflight[:] = in_flight
                # Counted as done (refused), so flush() and stats() stay consistent.
                self._taken += from_buffer
                self._done += from_buffer + from_batch
                if from_buffer + from_batch:
                    self._count_drop(
                        execution_id,
                        "log entries of an ended execution could not be written; dropped",
                        "the database could not be written when the execution ended "
                        f"({self._last_failure})",
                        from_buffer + from_batch,
                    )
                self._changed.notify_all()
        except StorageError:
            return  # the writer is closed: shutdown() accounts for what is left

    def _summary_row(self, execution_id: str, drops: _Drops) -> Row:
        """The WARN entry of ``drops`` (lock held), timed before every unwritten entry.

        Its id comes before entries still waiting, so it takes the time of the oldest of
        them: ids keep following timestamps.
        """
        waiting = [rows[0][3] for rows in (self._inflight, self._buffer) if rows]
        ts = min(waiting) if waiting else max(self._clock(), self._last_ts)
        self._last_ts = max(self._last_ts, ts)
        reason = "; ".join(drops.reasons)
        return (
            execution_id,
            None,
            None,
            ts,
            LogLevel.WARN.value,
            COLLECTOR_SOURCE,
            f"Dropped {drops.count} log entries: {reason}",
            json.dumps({"dropped_entries": drops.count, "reason": reason}),
        )

    def _store_summaries(
        self, only: str | None = None, *, make_room: Callable[[], bool] | None = None
    ) -> bool:
        """Store the WARN entry of every execution with unrecorded drops; ``False`` on failure."""
        with self._lock:
            ids = [eid for eid in self._pending_drops if only is None or eid == only]
        for execution_id in ids:
            with self._lock:
                drops = self._pending_drops.get(execution_id)
                if drops is None or not drops.count:
                    continue
                row, count = self._summary_row(execution_id, drops), drops.count
            try:
                try:
                    stored = write_drop_summary(self._writer, row, count)
                except StorageFull:
                    if make_room is None or not make_room():
                        raise
                    stored = write_drop_summary(self._writer, row, count)
            except StorageError as exc:
                with self._lock:
                    first = not self._summary_failing
                    self._summary_failing = True
                if first:
                    self._report(
                        f"autokestra: cannot record {count} dropped log entries of execution "
                        f"{execution_id} ({_describe(exc)}); will retry"
                    )
                return False
            with self._lock:
                self._summary_failing = False
                drops = self._pending_drops[execution_id]
                drops.count -= count
                if drops.count <= 0:
                    del self._pending_drops[execution_id]
                if stored:
                    self._written += 1
            if not stored:  # the execution row does not exist: nothing to record it on
                continue
        return True

    def shutdown(self, timeout: float = 5.0) -> None:
        """Write what is buffered and stop the flush thread; idempotent.

        Entries still unwritten at the deadline (a database failing throughout) are counted
        as dropped and reported. Later ``log()`` calls drop their entries.
        """
        with self._lock:
            if self._shutdown_done:
                return
            self._shutdown_done = True
            self._closing = True
            self._force = self._logged
        self._wake.set()
        self._thread.join(timeout)
        with self._lock:
            if self._thread.is_alive():
                self._abandoned = True
                self._stop.set()
                lost = self._logged - self._done
                per_execution: dict[str, int] = {}
                for row in (*self._inflight, *self._buffer):
                    per_execution[row[0]] = per_execution.get(row[0], 0) + 1
                for execution_id, count in per_execution.items():
                    self._count_drop(
                        execution_id,
                        "log entries lost at shutdown",
                        f"the database could not be written before shutdown ({self._last_failure})",
                        count,
                    )
                self._dropped += lost - sum(per_execution.values())
                self._report(f"autokestra: {lost} log entries could not be written before shutdown")
            self._changed.notify_all()
        self._thread.join(0.5)

    def stats(self) -> CollectorStats:
        """A snapshot of the collector's counters."""
        with self._lock:
            samples = sorted(self._commit_ms)
            return CollectorStats(
                logged=self._logged,
                written=self._written,
                dropped=self._dropped,
                pending=self._logged - self._done,
                transactions=self._transactions,
                failures=self._failures,
                commit_p50_ms=percentile(samples, 0.50),
                commit_p99_ms=percentile(samples, 0.99),
            )

    # -- the flush thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            with self._lock:
                self._stopped = True
                self._changed.notify_all()

    def _loop(self) -> None:
        batch: list[Row] = []
        while True:
            try:
                if not batch:
                    batch = self._next_batch()
                    if not batch:
                        return
                batch = self._write_with_retry(batch)
            except Exception as exc:  # a bug here must not silently end all logging
                self._report(f"autokestra: log flush thread error: {exc!r}")
                if self._stop.wait(self._retry_max_s):
                    return

    def _next_batch(self) -> list[Row]:
        """Block until a batch is due and take it; empty list means: stop."""
        while True:
            with self._lock:
                self._signaled = False
                if self._abandoned:
                    return []
                size = len(self._buffer)
                wait: float | None = self._refill_wait(size)
                if wait:
                    pass  # producers were just released: let them refill without contention
                elif size:
                    age = self._clock() - self._buffer[0][3]
                    if (
                        size >= self._max_batch
                        or age >= self._max_age_ms
                        or self._force > self._taken
                        or self._closing
                    ):
                        take = min(size, self._max_txn)
                        batch = [self._buffer.popleft() for _ in range(take)]
                        self._taken += take
                        return batch
                    wait = (self._max_age_ms - age) / 1000
                elif self._closing:
                    return []
                else:
                    wait = None
            self._wake.wait(wait)
            self._wake.clear()

    def _refill_wait(self, size: int) -> float | None:
        """Seconds to hold the next transaction while released producers refill (lock held).

        Waiting producers are released only after a commit, and the next transaction waits
        until they have filled the buffer (or briefly): the two never compete for the GIL,
        which is what keeps a flood's commits short.
        """
        if not self._refill_until:
            return None
        remaining = self._refill_until - time.monotonic()
        if remaining <= 0 or size >= self._pace_level or self._closing or self._force > self._taken:
            self._refill_until = 0.0
            return None
        return remaining

    def _write_with_retry(self, batch: list[Row]) -> list[Row]:
        """Write ``batch``; retry until it succeeds. Returns what is left (empty when done).

        The batch is retried whole, never split to squeeze into the last free pages: that
        headroom is what lets the small writes that matter more fit on a full disk (the
        dropped-entry count, the execution's end state). Measured under a file-size limit:
        with halved retries the drop count no longer fit at the end of the execution.
        """
        with self._lock:
            self._inflight = batch
        delay = self._retry_initial_s
        failing = False
        attempts = 0
        while True:
            if self._abandoned:
                return []
            try:
                # The writer lock spans reading the rows in flight to the commit, so
                # end_execution can take rows out only between attempts (see _drop_unwritten).
                with self._writer.locked():
                    with self._lock:
                        rows = list(self._inflight)
                    if rows:
                        self._write(rows)
                    with self._lock:
                        self._inflight = []
            except Exception as exc:
                attempts += 1
                with self._lock:
                    self._failures += 1
                    self._failing = True
                    self._last_failure = _describe(exc)
                    self._changed.notify_all()  # paced producers stop waiting for a commit
                if not failing:
                    failing = True
                    self._report(
                        f"autokestra: cannot write logs ({_describe(exc)}); keeping "
                        f"{len(self._inflight)} entries and retrying"
                    )
                if self._stop.wait(delay):
                    with self._lock:
                        return list(self._inflight)
                delay = min(delay * 2, self._retry_max_s)
                continue
            if failing:
                self._report(f"autokestra: log writes recovered after {attempts} failed attempts")
            self._after_success()
            return []

    def _write(self, batch: list[Row]) -> None:
        started = time.perf_counter()
        written = write_rows(self._writer, batch)
        elapsed_ms = (time.perf_counter() - started) * 1000
        refused = [row for row, ok in zip(batch, written, strict=True) if not ok]
        with self._lock:
            self._transactions += 1
            self._commit_ms.append(elapsed_ms)
            self._written += len(batch) - len(refused)
            self._done += len(batch)
            self._dropped += len(refused)
            self._pace_off = False
            self._failing = False
            if self._pacing or (self._waiting and len(self._buffer) <= self._resume_level):
                self._refill_until = time.monotonic() + _REFILL_S
            self._changed.notify_all()  # room for waiting producers, progress for flush()
            listeners = self._listeners
        if listeners:
            stored = [row for row, ok in zip(batch, written, strict=True) if ok]
            self._tell(listeners, stored, elapsed_ms / 1000)
        if refused:
            self._report(
                f"autokestra: {len(refused)} log entries refused by the database "
                "(unknown execution or invalid data); dropped"
            )

    def _tell(self, listeners: tuple[StoredListener, ...], rows: list[Row], seconds: float) -> None:
        """Give each listener the stored entries; drop (and report) one that raises."""
        entries = [
            LogEntry(
                execution_id=row[0],
                task_id=row[1],
                attempt=row[2],
                level=LogLevel(row[4]),
                source=row[5],
                message=row[6],
                metadata=None if row[7] is None else json.loads(row[7]),
                timestamp=row[3],
            )
            for row in rows
        ]
        for listener in listeners:
            try:
                listener(entries, seconds)
            except Exception as exc:
                with self._lock:
                    self._listeners = tuple(x for x in self._listeners if x is not listener)
                self._report(
                    f"autokestra: a log listener failed ({exc!r}); it is removed, logging goes on"
                )

    def _after_success(self) -> None:
        """After a commit: end a shedding episode and record its drops at once."""
        with self._lock:
            self._shedding = False
            if not self._pending_drops:
                return
            total = sum(drops.count for drops in self._pending_drops.values())
        if self._store_summaries():
            self._report(
                f"autokestra: log writes work again; {total} dropped entries counted in a "
                "stored WARN entry (executions.logs_dropped)"
            )

    def _report(self, text: str) -> None:
        stream = self._report_stream if self._report_stream is not None else sys.stderr
        try:
            stream.write(text + "\n")
            stream.flush()
        except Exception:  # a closed stderr must not take logging down with it
            return


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__
    text = str(exc) or type(exc).__name__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text}: {cause}"
    return text
