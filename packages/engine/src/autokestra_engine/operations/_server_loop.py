"""The server: runs queued executions, fires cron workflows, keeps the database in shape.

One long-running engine process. Each poll it fires the due cron triggers of registered
workflows (each fire creates a queued execution with trigger ``cron``), then claims queued
executions (``run --detach``, cron fires, webhook requests accepted by :attr:`Server.webhooks`)
while it has capacity: a claim is one
``BEGIN IMMEDIATE`` transaction that takes the oldest unowned PENDING execution, so two
servers on one database never run the same execution. A maintenance thread recovers
executions of dead engine processes, runs retention at start and every 24 h, and checks
table sizes after each retention run. :meth:`Server.stop` (SIGTERM/SIGINT in the CLI) stops
taking work, lets running executions finish within the shutdown grace, cancels the rest
(``cancelled_by: system``) and flushes every buffered log.

    server = Server(config, engine=engine, registry=registry, err=sys.stderr)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    server.serve()   # returns after stop() once everything is flushed
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Protocol

from autokestra_obs_schema import (
    ExecutionNotFound,
    LogLevel,
    State,
    iso_from_ms,
    now_ms,
)

from .._config import EngineConfig
from ..language._plugin_registry import PluginRegistry
from ..language._problems import WorkflowInvalid
from ..language._workflow_parser import parse_workflow
from ..persistence._recorder import ExecutionAlreadyFinished
from ..run._engine import Engine
from ._recovery import recover_lost_executions
from ._webhooks import WebhookReceiver
from ._workflow_registry import RegisteredWorkflow, WorkflowRegistry

#: Seconds between polls for due cron fires and queued executions.
POLL_INTERVAL_S = 0.25
#: Seconds between retention runs (DESIGN.md §3: every 24 h).
RETENTION_INTERVAL_S = 86_400.0
#: Seconds between crash-recovery sweeps while the server runs.
RECOVERY_INTERVAL_S = 10.0
#: After a failed poll (database busy beyond its timeout, disk error), wait this long.
POLL_ERROR_BACKOFF_S = 5.0
#: After the grace, how long cancelled executions get to end (plugin TERM grace + margin).
CANCEL_WAIT_S = 15.0

_CLAIM_NEXT = """
SELECT execution_id FROM executions
WHERE state = ? AND engine_id IS NULL
ORDER BY created_at, execution_id LIMIT 1
"""
_TAKE = """
UPDATE executions SET engine_id = ?, engine_pid = ?, engine_host = ?, heartbeat_at = ?,
    updated_at = ?
WHERE execution_id = ? AND state = ? AND engine_id IS NULL
"""


class LineSink(Protocol):
    """Where the server's lifecycle lines go: ``sys.stderr``, or a wrapper around it."""

    def write(self, text: str, /) -> int:
        """Write ``text``."""
        ...

    def flush(self) -> None:
        """Push what was written out."""
        ...


class Maintenance(Protocol):
    """Database upkeep the server schedules; the CLI supplies it from obs-store.

    The engine does not import the read side (DESIGN.md §1), so retention and the size
    watch come in through this seam.
    """

    def run_retention(self, now_ms: int) -> str:
        """Delete what is past the retention window; return a one-line summary."""
        ...

    def check_sizes(self) -> list[str]:
        """Return one warning message per table over the size threshold."""
        ...


@dataclass(frozen=True, slots=True)
class ServerTimings:
    """Intervals of the server's loops (tests shorten them)."""

    poll_interval_s: float = POLL_INTERVAL_S
    retention_interval_s: float = RETENTION_INTERVAL_S
    recovery_interval_s: float = RECOVERY_INTERVAL_S
    cancel_wait_s: float = CANCEL_WAIT_S
    poll_error_backoff_s: float = POLL_ERROR_BACKOFF_S


class Server:
    """The long-running engine process behind ``workflow server start``.

    Args:
        config: engine configuration (capacity, retention, size threshold, shutdown grace).
        engine: the process's engine (its writer and collector are the process's own).
        registry: discovered plugins, to parse registered workflows at each cron fire.
        err: where lifecycle lines go (stderr in the CLI, which escapes control
            characters: messages may quote workflow text).
        maintenance: retention and size watch (None: neither runs).
        timings: loop intervals.
        clock: Unix-ms clock.
    """

    def __init__(
        self,
        config: EngineConfig,
        *,
        engine: Engine,
        registry: PluginRegistry,
        err: LineSink,
        maintenance: Maintenance | None = None,
        timings: ServerTimings | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.config = config
        self.engine = engine
        self.writer = engine.writer
        self.collector = engine.collector
        self.plugins = registry
        self.workflows = WorkflowRegistry(engine.writer)
        self.err = err
        self.maintenance = maintenance
        self.timings = timings or ServerTimings()
        self.clock = clock
        self.capacity = max(1, config.max_concurrent_tasks)
        self._stop = threading.Event()
        self._running: dict[str, threading.Thread] = {}
        self._running_lock = threading.Lock()
        self._say_lock = threading.Lock()
        self._why = ""
        #: ``POST /webhooks/<id>`` of ``--listen`` lands here; its executions queue like
        #: cron fires and this loop runs them.
        self.webhooks = WebhookReceiver(
            engine=engine,
            plugins=registry,
            say=self.say,
            stopping=lambda: self.stopping,
            clock=clock,
        )

    # -- lifecycle -------------------------------------------------------------------------

    def say(self, level: LogLevel, message: str) -> None:
        """One lifecycle line on ``err``: ``<ISO time> <LEVEL> server: <message>``."""
        with self._say_lock:
            self.err.write(f"{iso_from_ms(now_ms())} {level.value:<5} server: {message}\n")
            self.err.flush()

    def status_line(self) -> str:
        """The one-line status printed at start."""
        plugins = os.pathsep.join(str(p) for p in self.config.plugin_paths) or "-"
        return (
            f"Autokestra server started: db {self.config.db_path}, plugins {plugins}, "
            f"concurrency {self.capacity}, retention {self.config.retention_days} days, "
            f"pid {os.getpid()}, engine {self.engine.engine_id}"
        )

    def stop(self, why: str = "stop requested") -> None:
        """Ask :meth:`serve` to stop taking work and shut down gracefully.

        Signal-safe: it only sets a flag (a handler that wrote a line could deadlock on the
        output lock the interrupted main thread holds); :meth:`serve` logs ``why``.
        """
        if not self._stop.is_set():
            self._why = why
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether a stop was requested."""
        return self._stop.is_set()

    def serve(self) -> None:
        """Run until :meth:`stop`, then shut down gracefully; returns when all is flushed."""
        self.recover()
        maintenance = threading.Thread(
            target=self._maintenance, name="autokestra-maintenance", daemon=True
        )
        maintenance.start()
        try:
            while not self._stop.is_set():
                try:
                    self.tick()
                except Exception as exc:  # a busy or failing database must not end the server
                    backoff = self.timings.poll_error_backoff_s
                    self.say(LogLevel.ERROR, f"Poll failed: {exc}; retrying in {backoff:g}s")
                    self._stop.wait(backoff)
                    continue
                self._stop.wait(self.timings.poll_interval_s)
        finally:
            self.say(LogLevel.INFO, f"Stopping gracefully: {self._why or 'interrupted'}")
            self._shutdown(maintenance)

    def tick(self) -> None:
        """One poll: fire due cron workflows, then claim queued executions up to capacity."""
        self.fire_due()
        while not self._stop.is_set() and self._free_slots() > 0:
            execution_id = self.claim_next()
            if execution_id is None:
                break
            self._start(execution_id)

    # -- claiming and running --------------------------------------------------------------

    def claim_next(self) -> str | None:
        """Take the oldest unowned PENDING execution for this engine, atomically."""
        owner = self.engine.owner
        with self.writer.locked() as conn:
            # A plain read first: an idle server must not take the write lock every poll.
            if not conn.execute(_CLAIM_NEXT, (State.PENDING,)).fetchall():
                return None
        at = self.clock()
        with self.writer.transaction(durable=True) as conn:
            rows = conn.execute(_CLAIM_NEXT, (State.PENDING,)).fetchall()
            if not rows:
                return None
            execution_id = str(rows[0][0])
            conn.execute(
                _TAKE,
                (owner.engine_id, owner.pid, owner.host, at, at, execution_id, State.PENDING),
            )
            if conn.changes() != 1:  # pragma: no cover - the write lock makes this impossible
                return None
        return execution_id

    def _free_slots(self) -> int:
        with self._running_lock:
            for eid, thread in list(self._running.items()):
                if not thread.is_alive():
                    del self._running[eid]
            return self.capacity - len(self._running)

    def _start(self, execution_id: str) -> None:
        thread = threading.Thread(
            target=self._run_one, args=(execution_id,), name=f"execution-{execution_id}"
        )
        with self._running_lock:
            self._running[execution_id] = thread
        self.say(LogLevel.INFO, f"Running execution {execution_id}")
        thread.start()

    def _run_one(self, execution_id: str) -> None:
        started = time.monotonic()
        try:
            outcome = self.engine.run(execution_id)
        except Exception as exc:  # one execution's failure must not stop the server
            self.say(LogLevel.ERROR, f"Execution {execution_id} could not run: {exc}")
            return
        elapsed = int((time.monotonic() - started) * 1000)
        self.say(
            LogLevel.INFO, f"Execution {execution_id} ended {outcome.state} after {elapsed} ms"
        )

    def running(self) -> list[str]:
        """Ids of the executions this server is running now."""
        with self._running_lock:
            return [eid for eid, t in self._running.items() if t.is_alive()]

    # -- cron ------------------------------------------------------------------------------

    def fire_due(self) -> list[str]:
        """Create a queued execution (trigger ``cron``) for every due, claimed cron fire."""
        created: list[str] = []
        now = self.clock()
        for due in self.workflows.due(now):
            execution_id = self._fire(due, now)
            if execution_id is not None:
                created.append(execution_id)
        return created

    def _fire(self, due: RegisteredWorkflow, now: int) -> str | None:
        # Claim first, in its own transaction: of two servers one wins the fire. The run
        # is created right after; a crash between the two loses that one fire (cron fires
        # are at most once, never twice).
        with self.writer.transaction() as conn:
            upcoming = self.workflows.claim_fire(conn, due, now)
        if upcoming is None:
            return None
        try:
            workflow = parse_workflow(
                due.source, self.plugins, filename=f"registered workflow {due.workflow_id}"
            )
            execution_id = self.engine.create_execution(
                workflow, {}, trigger_type="cron", detached=True
            )
        except WorkflowInvalid as exc:
            problems = "; ".join(str(p) for p in exc.problems)
            self.say(LogLevel.ERROR, f"Cron fire of {due.workflow_id} skipped: invalid: {problems}")
            return None
        except Exception as exc:  # a bad input or secret must not stop the other crons
            self.say(LogLevel.ERROR, f"Cron fire of {due.workflow_id} skipped: {exc}")
            return None
        self.say(
            LogLevel.INFO,
            f"Cron fired {due.workflow_id}: execution {execution_id} queued, next fire "
            f"{iso_from_ms(upcoming)}",
        )
        return execution_id

    # -- maintenance -----------------------------------------------------------------------

    def recover(self) -> None:
        """End executions of dead engine processes on this host FAILED (ENGINE_LOST)."""
        for lost in recover_lost_executions(
            self.writer, self.collector, own_engine_id=self.engine.engine_id, clock=self.clock
        ):
            groups = ", ".join(str(g) for g in lost.killed_process_groups) or "none"
            self.say(
                LogLevel.WARN,
                f"Recovered execution {lost.execution_id}: its engine (pid {lost.engine_pid})"
                f" was lost while it was {lost.previous_state}; marked FAILED (ENGINE_LOST);"
                f" killed plugin process groups: {groups}",
            )

    def run_retention(self) -> None:
        """Delete expired logs and audit events of finished executions, then check sizes."""
        if self.maintenance is None:
            return
        self.say(LogLevel.INFO, f"Retention ({self.config.retention_days} days): starting")
        self.say(LogLevel.INFO, f"Retention: {self.maintenance.run_retention(self.clock())}")

    def check_sizes(self) -> list[str]:
        """Log a WARN per table over the size threshold; returns the messages."""
        if self.maintenance is None:
            return []
        warnings = self.maintenance.check_sizes()
        for warning in warnings:
            self.say(LogLevel.WARN, warning)
        return warnings

    def _maintenance(self) -> None:
        # Sizes are checked at start, before the start-up retention (what the database was
        # when the server came up), and after every retention run, even a failed one.
        self._guarded(self.check_sizes)
        next_retention = 0.0
        next_recovery = time.monotonic() + self.timings.recovery_interval_s
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_retention:
                next_retention = now + self.timings.retention_interval_s
                self._guarded(self.run_retention)
                self._guarded(self.check_sizes)
            if now >= next_recovery:
                next_recovery = now + self.timings.recovery_interval_s
                self._guarded(self.recover)
            self._stop.wait(min(1.0, self.timings.recovery_interval_s))

    def _guarded(self, task: Callable[[], object]) -> None:
        try:
            task()
        except Exception as exc:  # maintenance failures are reported, never fatal
            self.say(LogLevel.ERROR, f"Maintenance failed: {exc}")

    # -- shutdown --------------------------------------------------------------------------

    def _shutdown(self, maintenance: threading.Thread | None = None) -> None:
        grace_s = self.config.shutdown_grace_ms / 1000
        running = self.running()
        if running:
            self.say(
                LogLevel.INFO,
                f"Stopping: waiting up to {grace_s:g}s for {len(running)} running executions",
            )
            self._join_all(time.monotonic() + grace_s)
        left = self.running()
        if left:
            self.say(LogLevel.WARN, f"Grace period over: cancelling {len(left)} executions")
            for execution_id in left:
                with suppress(ExecutionNotFound, ExecutionAlreadyFinished):
                    self.engine.request_cancel(execution_id, "system", "server shutdown")
            self._join_all(time.monotonic() + self.timings.cancel_wait_s)
        still = self.running()
        if still:
            self.say(LogLevel.ERROR, f"Executions still running at exit: {', '.join(still)}")
        if maintenance is not None:
            # A retention run ends at its next batch boundary; its summary comes before ours.
            maintenance.join(timeout=self.timings.cancel_wait_s)
        flushed = self.collector.flush(timeout=10.0)
        self.say(
            LogLevel.INFO, "Stopped: logs flushed" if flushed else "Stopped: log flush timed out"
        )

    def _join_all(self, deadline: float) -> None:
        with self._running_lock:
            threads = list(self._running.values())
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
