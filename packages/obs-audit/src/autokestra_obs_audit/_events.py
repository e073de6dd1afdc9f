"""The metadata each audit event type must carry.

validate_metadata(AuditEventType.STATE_CHANGE, {"from_state": "PENDING", "to_state": "RUNNING"})
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from autokestra_obs_schema import AuditEventType, AutokestraError, State


class AuditError(AutokestraError):
    """An audit event could not be written as asked."""


class NotInTransaction(AuditError):
    """``emit`` was called on a connection with no open transaction."""


class InvalidAuditMetadata(AuditError, ValueError):
    """The metadata does not have the keys and types its event type requires."""


_STATE_VALUES = frozenset(State)
_STR = "a non-empty string"
_OPT_STR = "a string or null"
_COUNT = "a non-negative integer"
_STATE = "an execution state"

# event type -> (required {key: kind}, optional {key: kind}); extra keys are allowed.
_FIELDS: dict[AuditEventType, tuple[dict[str, str], dict[str, str]]] = {
    AuditEventType.CREATED: ({"workflow_id": _STR, "trigger_type": _STR}, {}),
    AuditEventType.STARTED: ({}, {}),
    AuditEventType.STATE_CHANGE: (
        {"from_state": _STATE, "to_state": _STATE},
        # With task_id, the transition is a task run's (a skip), not the execution's.
        {"reason": _OPT_STR, "task_id": _STR},
    ),
    AuditEventType.COMPLETED: ({"duration_ms": _COUNT, "task_count": _COUNT}, {}),
    AuditEventType.FAILED: (
        {"error_message": _STR},
        {"failed_task_id": _OPT_STR, "stack_trace": _OPT_STR, "reason": _OPT_STR},
    ),
    AuditEventType.CANCELLED: (
        {"cancelled_by": _STR, "pending_task_count": _COUNT},
        {"reason": _OPT_STR},
    ),
    AuditEventType.TIMEOUT: ({"timeout_ms": _COUNT, "elapsed_ms": _COUNT}, {}),
}


def _fits(kind: str, value: Any) -> bool:
    if kind == _STR:
        return isinstance(value, str) and value != ""
    if kind == _OPT_STR:
        return value is None or isinstance(value, str)
    if kind == _STATE:
        return value in _STATE_VALUES
    # _COUNT: bool is an int subclass, but True is not a duration.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _is_object(value: object) -> bool:
    # Typed callers pass a Mapping; the engine also passes values read back from JSON.
    return isinstance(value, Mapping) and all(isinstance(k, str) for k in value)


def validate_metadata(event_type: AuditEventType, metadata: Mapping[str, Any]) -> None:
    """Check ``metadata`` against what ``event_type`` requires.

    Raises:
        InvalidAuditMetadata: not a mapping with string keys, a required key missing, a
            value of the wrong type, or something JSON cannot represent (NaN, objects).
    """
    if not _is_object(metadata):
        raise InvalidAuditMetadata(f"{event_type} metadata must be an object with string keys")
    required, optional = _FIELDS[event_type]
    problems: list[str] = []
    for key, kind in required.items():
        if key not in metadata:
            problems.append(f"missing {key!r}")
        elif not _fits(kind, metadata[key]):
            problems.append(f"{key!r} must be {kind}")
    for key, kind in optional.items():
        if key in metadata and not _fits(kind, metadata[key]):
            problems.append(f"{key!r} must be {kind}")
    if not _json_safe(dict(metadata)):
        problems.append("values must be JSON (no NaN, no objects)")
    if problems:
        raise InvalidAuditMetadata(f"Invalid {event_type} metadata: " + "; ".join(problems))
