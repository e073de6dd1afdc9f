"""The engine parts of one process, opened from one configuration and closed in order.

A command that runs workflows needs the same five things: the process's one ``Writer``, a
``LogCollector`` with the configured buffer, the plugin registry, the secret store and the
``Engine`` over them. :class:`EngineRuntime` is the one place that builds them. Each part
opens on first use, in dependency order, so a command opens only what it needs (``execution
cancel`` needs no plugins, an invalid workflow is reported before the database is touched);
:meth:`EngineRuntime.close` closes what was opened: the engine (worker threads), then the
collector (flush, then shutdown), then the writer.

    with EngineRuntime(config, plugin_paths=[Path("plugins")]) as runtime:
        workflow = load_workflow(path, runtime.registry)
        execution_id = runtime.engine.create_execution(workflow, {})
        outcome = runtime.engine.run(execution_id)
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from autokestra_obs_collector import ExecutionObserver, LogCollector
from autokestra_obs_schema import StorageError, Writer, open_writer

from ._config import EngineConfig
from ._secret_store import SecretStore
from .language._limits import WorkflowLimits
from .language._model import Workflow
from .language._plugin_registry import PluginRegistry
from .operations._recovery import LostExecution, recover_lost_executions
from .operations._server_loop import LineSink, Maintenance, Server, ServerTimings
from .operations._workflow_registry import registered_workflow
from .persistence._recorder import CancelOutcome
from .run._engine import Engine, request_cancel

_T = TypeVar("_T")

#: How long closing waits for the collector to write what is buffered.
CLOSE_TIMEOUT_S = 10.0


def _with_overrides(
    config: EngineConfig, db_path: Path | None, plugin_paths: Sequence[Path]
) -> EngineConfig:
    """``config`` with ``--db`` applied and ``--plugin-path`` folders searched first."""
    if db_path is not None:
        config = dataclasses.replace(config, db_path=db_path)
    if plugin_paths:
        first = list(plugin_paths)
        searched = [*first, *(p for p in config.plugin_paths if p not in first)]
        config = dataclasses.replace(config, plugin_paths=searched)
    return config


def _open_writable(path: Path) -> Writer:
    """``open_writer``, refusing at once a database this process can only read.

    SQLite opens a file it may not write read-only without a word, and an up-to-date schema
    needs no write to migrate: ``server start`` would then idle, failing only at its first
    execution (DESIGN.md §6.15).

    Raises:
        StorageError: the database (or its folder) cannot be written.
    """
    writer = open_writer(path)
    if writer.connection.readonly("main"):
        writer.close()
        raise StorageError(f"Cannot write the database {path}: it is read-only")
    return writer


def workflow_limits(config: EngineConfig) -> WorkflowLimits:
    """The ``limits:`` of ``config`` that apply to workflow files (DESIGN.md §6.9)."""
    return WorkflowLimits(workflow_bytes=config.workflow_bytes, max_tasks=config.max_tasks)


class EngineRuntime:
    """The Writer, LogCollector, PluginRegistry, SecretStore and Engine of one process.

    Args:
        config: the resolved engine configuration.
        db_path: the database file, overriding ``config.db_path`` (the CLI's ``--db``).
        plugin_paths: plugin folders searched before ``config.plugin_paths`` (the CLI's
            ``--plugin-path``).
        env: where ``AUTOKESTRA_SECRET_*`` values come from (default ``os.environ``).
        close_timeout_s: how long :meth:`close` waits for buffered log entries.
        observers: given to the engine (telemetry exporters); their owner shuts them down
            after :meth:`close`, once the collector has handed over its last entries.

    Every part is opened once, on first use, and may raise what its opening raises:
    ``registry`` nothing (bad manifests are listed in ``registry.problems``); ``secrets``
    :class:`SecretsError`; ``writer`` the storage errors of ``open_writer``. Not meant to be
    opened from several threads at once (a lock keeps it safe anyway).
    """

    def __init__(
        self,
        config: EngineConfig,
        *,
        db_path: Path | None = None,
        plugin_paths: Sequence[Path] = (),
        env: Mapping[str, str] | None = None,
        close_timeout_s: float = CLOSE_TIMEOUT_S,
        observers: Sequence[ExecutionObserver] = (),
    ) -> None:
        self.config = _with_overrides(config, db_path, plugin_paths)
        self._observers = tuple(observers)
        self._env = os.environ if env is None else env
        self._close_timeout_s = close_timeout_s
        self._lock = threading.RLock()
        self._closed = False
        self._registry: PluginRegistry | None = None
        self._secrets: SecretStore | None = None
        self._writer: Writer | None = None
        self._collector: LogCollector | None = None
        self._engine: Engine | None = None

    # -- the parts, opened on first use --------------------------------------------------------

    def _open(self, current: _T | None, make: Callable[[], _T]) -> _T:
        if self._closed:
            raise RuntimeError("the engine runtime is closed")
        return current if current is not None else make()

    @property
    def registry(self) -> PluginRegistry:
        """The built-in plugins plus every plugin on ``config.plugin_paths``."""
        with self._lock:
            self._registry = self._open(
                self._registry, lambda: PluginRegistry.discover(self.config.plugin_paths)
            )
            return self._registry

    @property
    def secrets(self) -> SecretStore:
        """Secrets of ``config.secrets_file`` and ``AUTOKESTRA_SECRET_*``.

        Raises:
            SecretsError: the secrets file is unsafe, unreadable or malformed.
        """
        with self._lock:
            self._secrets = self._open(
                self._secrets, lambda: SecretStore.load(self.config, self._env)
            )
            return self._secrets

    @property
    def writer(self) -> Writer:
        """The process's one Writer on ``config.db_path`` (created and migrated if needed)."""
        with self._lock:
            self._writer = self._open(self._writer, lambda: _open_writable(self.config.db_path))
            return self._writer

    @property
    def collector(self) -> LogCollector:
        """The log collector over :attr:`writer`, batching as ``config`` says."""
        with self._lock:
            self._collector = self._open(
                self._collector,
                lambda: LogCollector(
                    self.writer,
                    max_batch=self.config.buffer_max_entries,
                    max_age_s=self.config.buffer_max_age_ms / 1000,
                    mask_token_shapes=self.config.mask_token_shapes,
                ),
            )
            return self._collector

    @property
    def engine(self) -> Engine:
        """The engine over the other four parts.

        The registry and the secrets open before the database, so a bad secrets file is
        reported without creating a database.
        """
        with self._lock:
            if self._engine is None:
                registry, secrets = self.registry, self.secrets
                self._engine = Engine(
                    self.config,
                    writer=self.writer,
                    collector=self.collector,
                    registry=registry,
                    secrets=secrets,
                    observers=self._observers,
                    workflows=self._registered,
                )
            return self._engine

    def _registered(self, workflow_id: str) -> Workflow | None:
        """A registered workflow by id (what a subflow task starts), read by the writer."""
        with self.writer.locked() as conn:
            return registered_workflow(conn, workflow_id, self.registry)

    # -- what commands do with them --------------------------------------------------------

    def recover_lost_executions(self) -> list[LostExecution]:
        """End executions of dead engine processes on this host FAILED (ENGINE_LOST).

        Every engine process sweeps, not only the server (DESIGN.md §3).

        Raises:
            StorageError: the database failed during the sweep.
        """
        return recover_lost_executions(
            self.writer, self.collector, own_engine_id=self.engine.engine_id
        )

    def request_cancel(self, execution_id: str, *, by: str, reason: str | None) -> CancelOutcome:
        """Record a cancellation request (``execution cancel``); opens no engine.

        Raises:
            ExecutionNotFound: no such execution.
            ExecutionAlreadyFinished: it already ended.
        """
        return request_cancel(self.writer, self.collector, execution_id, by=by, reason=reason)

    def server(
        self,
        *,
        err: LineSink,
        maintenance: Maintenance | None = None,
        timings: ServerTimings | None = None,
    ) -> Server:
        """The long-running server over this runtime's engine (``server start``).

        Args:
            err: where lifecycle lines go.
            maintenance: retention and size watch (the CLI supplies it from obs-store).
            timings: loop intervals (tests shorten them).
        """
        return Server(
            self.config,
            engine=self.engine,
            registry=self.registry,
            err=err,
            maintenance=maintenance,
            timings=timings,
        )

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close what was opened: engine, then collector (flush, shutdown), then writer.

        Idempotent; the writer is closed even when an earlier step raises.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            engine, collector, writer = self._engine, self._collector, self._writer
            self._engine = self._collector = self._writer = None
        try:
            if engine is not None:
                engine.close()
        finally:
            try:
                if collector is not None:
                    collector.flush(timeout=self._close_timeout_s)
                    collector.shutdown(timeout=self._close_timeout_s)
            finally:
                if writer is not None:
                    writer.close()

    def __enter__(self) -> EngineRuntime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
