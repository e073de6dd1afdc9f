"""autokestra_obs_store: the read side of Autokestra's database (never imports the engine).

Log queries and follow, execution inspection, retention and storage statistics, all on
read-only connections except retention, which writes through the process's ``Writer``.
The JSON documents (``*_document``) are the one serializer of the CLI's ``--json`` and the
web console's API. Test helpers live in :mod:`autokestra_obs_store.testing`.

    page = list_executions(open_reader(path), state=State.FAILED, limit=20)
    print(json.dumps([execution_summary_document(s) for s in page]))
"""

from __future__ import annotations

from autokestra_obs_schema import lazy_exports

# Not typing.TYPE_CHECKING: a command that needs one name must not pay for typing's import.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._documents import (
        execution_document,
        execution_summary_document,
        inspection_document,
        log_record_document,
        log_record_json,
        task_document,
        timeline_document,
    )
    from ._errors import InvalidFilter, TaskNotFound
    from ._execution_list import (
        ExecutionCursor,
        ExecutionOutcome,
        ExecutionSummary,
        all_execution_ids,
        execution_outcome,
        list_executions,
    )
    from ._export import ExportRefused, ExportReport, default_bundle_path, export_execution
    from ._follow import LogFollower
    from ._inspect import ExecutionInspector
    from ._inspect_model import (
        AttemptView,
        AuditEvent,
        ChildExecution,
        Dependency,
        ExecutionOverview,
        Inspection,
        Segment,
        TaskTimeline,
        TaskView,
        Timeline,
        Violation,
    )
    from ._iterations import in_task_family, split_iteration
    from ._liveness import STALE_HEARTBEAT_MS, EngineGone, engine_gone
    from ._log_filter import (
        INVALID_TIME_MESSAGE,
        LogFilter,
        parse_duration,
        parse_levels,
        parse_since,
    )
    from ._log_pages import LogPage, log_page
    from ._log_store import DEFAULT_SEARCH_LIMIT, LogRecord, LogStore
    from ._metrics import (
        TASK_DURATION_BUCKETS_S,
        DurationHistogram,
        LogTally,
        MetricsSnapshot,
        metrics_snapshot,
    )
    from ._retention import (
        DEFAULT_BATCH_SIZE,
        DEFAULT_RETENTION_DAYS,
        RETENTION_ENV,
        PurgeReport,
        RetentionConfigError,
        RetentionPolicy,
        purge,
    )
    from ._search import (
        MATCH_END,
        MATCH_START,
        InvalidSearchQuery,
        SearchFilter,
        SearchHit,
        search_hit_document,
    )
    from ._size_watch import SizeWarning, check_sizes
    from ._verify import KEYED_STATUS, UNKEYED_STATUS, AuditVerdict
    from ._workflows import WorkflowSummary, registered_workflows

#: Each public name's module, imported on first use: `workflow execution logs` needs a
#: few of these modules, and importing all of them (their dataclasses above all) cost
#: more CPU than the command itself.
_MODULES = {
    "AttemptView": "._inspect_model",
    "AuditEvent": "._inspect_model",
    "AuditVerdict": "._verify",
    "ChildExecution": "._inspect_model",
    "DEFAULT_BATCH_SIZE": "._retention",
    "DEFAULT_RETENTION_DAYS": "._retention",
    "DEFAULT_SEARCH_LIMIT": "._log_store",
    "Dependency": "._inspect_model",
    "DurationHistogram": "._metrics",
    "EngineGone": "._liveness",
    "ExecutionCursor": "._execution_list",
    "ExecutionInspector": "._inspect",
    "ExecutionOutcome": "._execution_list",
    "ExecutionOverview": "._inspect_model",
    "ExecutionSummary": "._execution_list",
    "ExportRefused": "._export",
    "ExportReport": "._export",
    "INVALID_TIME_MESSAGE": "._log_filter",
    "Inspection": "._inspect_model",
    "InvalidFilter": "._errors",
    "InvalidSearchQuery": "._search",
    "KEYED_STATUS": "._verify",
    "LogFilter": "._log_filter",
    "LogFollower": "._follow",
    "LogPage": "._log_pages",
    "LogRecord": "._log_store",
    "LogStore": "._log_store",
    "LogTally": "._metrics",
    "MATCH_END": "._search",
    "MATCH_START": "._search",
    "MetricsSnapshot": "._metrics",
    "PurgeReport": "._retention",
    "RETENTION_ENV": "._retention",
    "RetentionConfigError": "._retention",
    "RetentionPolicy": "._retention",
    "STALE_HEARTBEAT_MS": "._liveness",
    "SearchFilter": "._search",
    "SearchHit": "._search",
    "Segment": "._inspect_model",
    "SizeWarning": "._size_watch",
    "TASK_DURATION_BUCKETS_S": "._metrics",
    "TaskNotFound": "._errors",
    "TaskTimeline": "._inspect_model",
    "TaskView": "._inspect_model",
    "Timeline": "._inspect_model",
    "UNKEYED_STATUS": "._verify",
    "Violation": "._inspect_model",
    "WorkflowSummary": "._workflows",
    "all_execution_ids": "._execution_list",
    "check_sizes": "._size_watch",
    "default_bundle_path": "._export",
    "engine_gone": "._liveness",
    "execution_document": "._documents",
    "execution_outcome": "._execution_list",
    "execution_summary_document": "._documents",
    "export_execution": "._export",
    "in_task_family": "._iterations",
    "inspection_document": "._documents",
    "list_executions": "._execution_list",
    "log_page": "._log_pages",
    "log_record_document": "._documents",
    "log_record_json": "._documents",
    "metrics_snapshot": "._metrics",
    "parse_duration": "._log_filter",
    "parse_levels": "._log_filter",
    "parse_since": "._log_filter",
    "purge": "._retention",
    "registered_workflows": "._workflows",
    "search_hit_document": "._search",
    "split_iteration": "._iterations",
    "task_document": "._documents",
    "timeline_document": "._documents",
}

__all__ = [
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


if not TYPE_CHECKING:  # hidden from mypy, which then checks each imported name
    __getattr__, __dir__ = lazy_exports(__name__, _MODULES, __all__)
