"""autokestra_obs_store: the read side of Autokestra's database (never imports the engine).

Log queries and follow, execution inspection, retention and storage statistics, all on
read-only connections except retention, which writes through the process's ``Writer``.
"""

from ._errors import ExecutionNotFound, InvalidFilter
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
from ._log_store import TERMINAL_STATES, LogRecord, LogStore
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
from ._size_watch import SizeWarning, check_sizes

__all__ = [
    "AttemptView",
    "AuditEvent",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_RETENTION_DAYS",
    "Dependency",
    "DurationHistogram",
    "ExecutionInspector",
    "ExecutionNotFound",
    "ExecutionOverview",
    "INVALID_LEVEL_MESSAGE",
    "INVALID_TIME_MESSAGE",
    "Inspection",
    "InvalidFilter",
    "LOG_LEVELS",
    "LogFilter",
    "LogFollower",
    "LogRecord",
    "LogStore",
    "LogTally",
    "MetricsSnapshot",
    "PurgeReport",
    "RETENTION_ENV",
    "RetentionConfigError",
    "RetentionPolicy",
    "Segment",
    "SizeWarning",
    "TASK_DURATION_BUCKETS_S",
    "TERMINAL_STATES",
    "TaskNotFound",
    "TaskTimeline",
    "TaskView",
    "Timeline",
    "Violation",
    "check_sizes",
    "metrics_snapshot",
    "parse_duration",
    "parse_levels",
    "parse_since",
    "purge",
]
