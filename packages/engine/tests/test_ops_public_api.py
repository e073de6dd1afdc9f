"""The operations half of autokestra_engine's public API (registry, server, recovery), pinned."""

from __future__ import annotations

import autokestra_engine

OPS_NAMES = {
    "LostExecution",
    "Maintenance",
    "RegisteredWorkflow",
    "RegistryError",
    "Server",
    "ServerTimings",
    "WorkflowNotRegistered",
    "WorkflowRegistry",
    "describe_trigger",
    "get_workflow",
    "list_workflows",
    "next_fire_ms",
    "recover_lost_executions",
    "validate_schedule",
}


class TestOpsApi:
    def test_ops_names_exported(self) -> None:
        """Every operations name is in __all__ and resolves (a removal is a deliberate act)."""
        assert set(autokestra_engine.__all__) >= OPS_NAMES
        for name in OPS_NAMES:
            assert getattr(autokestra_engine, name) is not None
