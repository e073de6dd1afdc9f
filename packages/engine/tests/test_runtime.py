"""EngineRuntime: the process's engine parts opened from one config, closed in order."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from autokestra_engine import (
    EngineConfig,
    EngineRuntime,
    RunOutcome,
    SecretsError,
    parse_workflow,
)
from autokestra_obs_schema import ExecutionNotFound, Reason, State, open_reader

OK = """
id: ok
tasks:
  - id: hello
    type: core/log.emit
    inputs: {message: hello}
"""

FAILING = """
id: failing
tasks:
  - id: boom
    type: core/shell.run
    inputs: {command: "exit 3"}
"""

SLOW = """
id: slow
tasks:
  - id: nap
    type: core/wait.sleep
    inputs: {duration: 30s}
"""


def _config(tmp_path: Path) -> EngineConfig:
    return EngineConfig(db_path=tmp_path / "db" / "autokestra.db", max_concurrent_tasks=2)


def _log_messages(db: Path, execution_id: str) -> list[str]:
    conn = open_reader(db)
    try:
        rows = conn.execute(
            "SELECT message FROM execution_logs WHERE execution_id = ? ORDER BY id",
            (execution_id,),
        ).fetchall()
        return [str(message) for (message,) in rows]
    finally:
        conn.close()


class TestOpening:
    def test_parts_open_on_first_use_only(self, tmp_path: Path) -> None:
        """Plugins and secrets load without creating the database; the writer creates it."""
        config = _config(tmp_path)
        with EngineRuntime(config, env={}) as runtime:
            assert "core/log.emit" in {a.type for a in runtime.registry.actions()}
            assert runtime.secrets.names() == []
            assert not config.db_path.exists()
            assert runtime.writer is runtime.writer
            assert config.db_path.exists()

    def test_overrides_as_the_cli_passes_them(self, tmp_path: Path) -> None:
        """``db_path`` replaces the configured one; ``plugin_paths`` are searched first."""
        config = EngineConfig(plugin_paths=[tmp_path / "b", tmp_path / "a"])
        runtime = EngineRuntime(
            config, db_path=tmp_path / "x.db", plugin_paths=[tmp_path / "a", tmp_path / "c"]
        )
        assert runtime.config.db_path == tmp_path / "x.db"
        assert runtime.config.plugin_paths == [tmp_path / "a", tmp_path / "c", tmp_path / "b"]
        runtime.close()

    def test_bad_secrets_file_fails_before_the_database_exists(self, tmp_path: Path) -> None:
        """The engine opens registry and secrets before the writer: no stray database."""
        secrets = tmp_path / "secrets.env"
        secrets.write_text("TOKEN=x\n")
        secrets.chmod(0o644)
        config = EngineConfig(db_path=tmp_path / "db" / "a.db", secrets_file=secrets)
        with EngineRuntime(config, env={}) as runtime, pytest.raises(SecretsError):
            _ = runtime.engine
        assert not config.db_path.exists()

    def test_environment_secrets(self, tmp_path: Path) -> None:
        """``env`` is where AUTOKESTRA_SECRET_* values come from."""
        with EngineRuntime(_config(tmp_path), env={"AUTOKESTRA_SECRET_API": "v4lue"}) as rt:
            assert rt.secrets.get("API") == "v4lue"

    def test_closed_runtime_refuses_to_open(self, tmp_path: Path) -> None:
        """After close nothing reopens behind the caller's back; close is idempotent."""
        runtime = EngineRuntime(_config(tmp_path), env={})
        runtime.close()
        runtime.close()
        with pytest.raises(RuntimeError, match="closed"):
            _ = runtime.writer


class TestRunning:
    def test_run_returns_the_stored_outcome(self, tmp_path: Path) -> None:
        """A success has no reason and no message, and the duration the row records."""
        config = _config(tmp_path)
        with EngineRuntime(config, env={}) as runtime:
            engine = runtime.engine
            eid = engine.create_execution(parse_workflow(OK, runtime.registry), {})
            outcome = engine.run(eid)
            assert outcome == engine.outcome(eid)
        assert isinstance(outcome, RunOutcome)
        assert outcome.state is State.SUCCESS
        assert outcome.reason_code is None and outcome.message is None
        assert outcome.duration_ms is not None and outcome.duration_ms >= 0
        # Closing flushed the collector before closing the writer: the summary is stored.
        assert any(
            m.startswith("Execution completed in") for m in _log_messages(config.db_path, eid)
        )

    def test_failure_outcome_carries_reason_and_message(self, tmp_path: Path) -> None:
        """A failed task gives FAILED, TASK_FAILED and the one-line message."""
        with EngineRuntime(_config(tmp_path), env={}) as runtime:
            engine = runtime.engine
            eid = engine.create_execution(parse_workflow(FAILING, runtime.registry), {})
            outcome = engine.run(eid)
        assert outcome.state is State.FAILED
        assert outcome.reason_code == Reason.TASK_FAILED
        assert outcome.message is not None and outcome.message.startswith("Task boom failed")

    def test_finished_execution_is_not_run_again(self, tmp_path: Path) -> None:
        """Running an ended execution returns its outcome unchanged."""
        with EngineRuntime(_config(tmp_path), env={}) as runtime:
            engine = runtime.engine
            eid = engine.create_execution(parse_workflow(OK, runtime.registry), {})
            first = engine.run(eid)
            assert engine.run(eid) == first

    def test_unknown_execution(self, tmp_path: Path) -> None:
        """Running or asking about an unknown id raises the vocabulary's ExecutionNotFound."""
        with EngineRuntime(_config(tmp_path), env={}) as runtime:
            with pytest.raises(ExecutionNotFound):
                runtime.engine.run("nope")
            with pytest.raises(ExecutionNotFound):
                runtime.engine.outcome("nope")

    def test_cancel_from_a_second_runtime(self, tmp_path: Path) -> None:
        """``request_cancel`` needs no engine: another runtime cancels a running execution."""
        config = _config(tmp_path)
        with EngineRuntime(config, env={}) as runtime:
            engine = runtime.engine
            eid = engine.create_execution(parse_workflow(SLOW, runtime.registry), {})
            outcomes: list[RunOutcome] = []
            thread = threading.Thread(target=lambda: outcomes.append(engine.run(eid)))
            thread.start()
            try:
                with EngineRuntime(config, env={}) as canceller:
                    while engine.outcome(eid).state is State.PENDING:
                        thread.join(0.02)
                    result = canceller.request_cancel(eid, by="user:test", reason="enough")
                    assert canceller._engine is None  # opened neither plugins nor engine
            finally:
                thread.join(30)
        assert result.recorded
        assert outcomes[0].state is State.CANCELLED
        assert outcomes[0].reason_code == Reason.CANCELLED_BY_USER
        assert outcomes[0].message == "Cancelled by user:test: enough"

    def test_recovery_sweep_finds_nothing_on_a_fresh_database(self, tmp_path: Path) -> None:
        """The sweep every engine process runs at start is available on the runtime."""
        with EngineRuntime(_config(tmp_path), env={}) as runtime:
            assert runtime.recover_lost_executions() == []
