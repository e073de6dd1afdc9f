"""The runtime half of autokestra_engine's public API, pinned."""

from __future__ import annotations

import autokestra_engine

RUNTIME_NAMES = {
    "CANCEL_POLL_S",
    "CancelOutcome",
    "CancelToken",
    "Dag",
    "Engine",
    "EngineEvent",
    "EngineOwner",
    "ExecutionAlreadyFinished",
    "ExecutionNotFound",
    "ExecutionOwned",
    "ExecutionRow",
    "ExecutionStore",
    "IllegalTransition",
    "LauncherMode",
    "Reason",
    "State",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "WorkerPool",
    "check_transition",
    "load_execution",
    "new_engine_id",
    "new_execution_id",
    "referenced_secrets",
    "request_cancel",
    "uuid7",
}


class TestRuntimeApi:
    def test_runtime_names_exported(self) -> None:
        """Every runtime name is in __all__ and resolves (a removal is a deliberate act)."""
        exported = set(autokestra_engine.__all__)
        assert exported >= RUNTIME_NAMES
        for name in RUNTIME_NAMES:
            assert getattr(autokestra_engine, name) is not None

    def test_all_is_sorted_and_resolves(self) -> None:
        """__all__ is sorted and names only things the package has."""
        names = autokestra_engine.__all__
        assert names == sorted(names)
        assert all(hasattr(autokestra_engine, name) for name in names)
