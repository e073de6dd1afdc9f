"""autokestra_obs_store: the read side of Autokestra's database (never imports the engine).

Log queries and follow, execution inspection, retention and storage statistics, all on
read-only connections except retention, which writes through the process's ``Writer``.
"""

from ._errors import ExecutionNotFound, InvalidFilter
from ._export import ExportRefused, ExportReport, default_bundle_path, export_execution
from ._follow import LogFollower
from ._inspect import ExecutionInspector
from ._inspect_model import (
    AttemptView,
    AuditEvent,
    Dependency,
    ExecutionOverview,
    Inspection,
    Segment,
    TaskNotFound,
    TaskTimeline,
    TaskView,
    Timeline,
    Violation,
)
from ._log_filter import (
    INVALID_LEVEL_MESSAGE,
    INVALID_TIME_MESSAGE,
    LOG_LEVELS,
    LogFilter,
    parse_duration,
    parse_levels,
    parse_since,
)
from ._log_store import DEFAULT_SEARCH_LIMIT, TERMINAL_STATES, LogRecord, LogStore
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
)
from ._size_watch import SizeWarning, check_sizes

__all__ = [
    "AttemptView",
    "AuditEvent",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_RETENTION_DAYS",
    "DEFAULT_SEARCH_LIMIT",
    "Dependency",
    "ExecutionInspector",
    "ExecutionNotFound",
    "ExecutionOverview",
    "ExportRefused",
    "ExportReport",
    "INVALID_LEVEL_MESSAGE",
    "INVALID_TIME_MESSAGE",
    "Inspection",
    "InvalidFilter",
    "InvalidSearchQuery",
    "LOG_LEVELS",
    "LogFilter",
    "LogFollower",
    "LogRecord",
    "LogStore",
    "MATCH_END",
    "MATCH_START",
    "PurgeReport",
    "RETENTION_ENV",
    "RetentionConfigError",
    "RetentionPolicy",
    "SearchFilter",
    "SearchHit",
    "Segment",
    "SizeWarning",
    "TERMINAL_STATES",
    "TaskNotFound",
    "TaskTimeline",
    "TaskView",
    "Timeline",
    "Violation",
    "check_sizes",
    "default_bundle_path",
    "export_execution",
    "parse_duration",
    "parse_levels",
    "parse_since",
    "purge",
]
