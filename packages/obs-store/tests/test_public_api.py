"""autokestra_obs_store's public API, pinned: adding or removing a name is a deliberate act."""

from __future__ import annotations

import autokestra_obs_store

PUBLIC_NAMES = [
    "AttemptView",
    "AuditEvent",
    "AuditVerdict",
    "ChildExecution",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_RETENTION_DAYS",
    "DEFAULT_SEARCH_LIMIT",
    "Dependency",
    "DurationHistogram",
    "EngineGone",
    "ExecutionCursor",
    "ExecutionInspector",
    "ExecutionOutcome",
    "ExecutionOverview",
    "ExecutionSummary",
    "ExportRefused",
    "ExportReport",
    "INVALID_TIME_MESSAGE",
    "Inspection",
    "InvalidFilter",
    "InvalidSearchQuery",
    "KEYED_STATUS",
    "LogFilter",
    "LogFollower",
    "LogPage",
    "LogRecord",
    "LogStore",
    "LogTally",
    "MATCH_END",
    "MATCH_START",
    "MetricsSnapshot",
    "PurgeReport",
    "RETENTION_ENV",
    "RetentionConfigError",
    "RetentionPolicy",
    "STALE_HEARTBEAT_MS",
    "SearchFilter",
    "SearchHit",
    "Segment",
    "SizeWarning",
    "TASK_DURATION_BUCKETS_S",
    "TaskNotFound",
    "TaskTimeline",
    "TaskView",
    "Timeline",
    "UNKEYED_STATUS",
    "Violation",
    "WorkflowSummary",
    "all_execution_ids",
    "check_sizes",
    "default_bundle_path",
    "engine_gone",
    "execution_document",
    "execution_outcome",
    "execution_summary_document",
    "export_execution",
    "in_task_family",
    "inspection_document",
    "list_executions",
    "log_page",
    "log_record_document",
    "log_record_json",
    "metrics_snapshot",
    "parse_duration",
    "parse_levels",
    "parse_since",
    "purge",
    "registered_workflows",
    "search_hit_document",
    "split_iteration",
    "task_document",
    "timeline_document",
]


class TestPublicApi:
    def test_all_is_exactly_the_pinned_names(self) -> None:
        """__all__ lists exactly the pinned names, sorted."""
        assert autokestra_obs_store.__all__ == PUBLIC_NAMES

    def test_every_name_resolves(self) -> None:
        """Every exported name is an attribute of the package."""
        for name in PUBLIC_NAMES:
            assert getattr(autokestra_obs_store, name) is not None

    def test_testing_module_is_public(self) -> None:
        """The test helpers are importable as autokestra_obs_store.testing."""
        from autokestra_obs_store import testing

        assert callable(testing.write_execution)
