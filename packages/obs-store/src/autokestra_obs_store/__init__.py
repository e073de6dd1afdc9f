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
from ._verify import KEYED_STATUS, UNKEYED_STATUS, AuditVerdict

__all__ = [
    "AttemptView",
    "AuditEvent",
    "AuditVerdict",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_RETENTION_DAYS",
    "Dependency",
    "ExecutionInspector",
    "ExecutionNotFound",
    "ExecutionOverview",
    "INVALID_LEVEL_MESSAGE",
    "INVALID_TIME_MESSAGE",
    "Inspection",
    "InvalidFilter",
    "KEYED_STATUS",
    "LOG_LEVELS",
    "LogFilter",
    "LogFollower",
    "LogRecord",
    "LogStore",
    "PurgeReport",
    "RETENTION_ENV",
    "RetentionConfigError",
    "RetentionPolicy",
    "Segment",
    "SizeWarning",
    "TERMINAL_STATES",
    "TaskNotFound",
    "TaskTimeline",
    "TaskView",
    "Timeline",
    "UNKEYED_STATUS",
    "Violation",
    "check_sizes",
    "parse_duration",
    "parse_levels",
    "parse_since",
    "purge",
]
