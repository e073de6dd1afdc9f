"""autokestra_obs_store: the read side of Autokestra's database (never imports the engine).

Log queries and follow, execution inspection, retention and storage statistics, all on
read-only connections except retention, which writes through the process's ``Writer``.
The JSON documents (``*_document``) are the one serializer of the CLI's ``--json`` and the
web console's API. Test helpers live in :mod:`autokestra_obs_store.testing`.

    page = list_executions(open_reader(path), state=State.FAILED, limit=20)
    print(json.dumps([execution_summary_document(s) for s in page]))
"""

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
    "task_document",
    "timeline_document",
]
