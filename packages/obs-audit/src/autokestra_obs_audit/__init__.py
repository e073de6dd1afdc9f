"""autokestra_obs_audit: the append-only, hash-chained audit trail of executions.

Events are written inside the caller's transaction, so a state change and its event commit
or roll back together; there is no update or delete API.

    from autokestra_obs_audit import AuditLogger, verify_chain
    from autokestra_obs_schema import AuditEventType

    with writer.transaction(durable=True) as conn:
        AuditLogger().emit(conn, eid, AuditEventType.CREATED,
                           {"workflow_id": "hello", "trigger_type": "manual"})
    assert verify_chain(reader, eid).ok
"""

from ._chain import ChainVerdict, verify_chain
from ._events import (
    AuditError,
    InvalidAuditMetadata,
    NotInTransaction,
    validate_metadata,
)
from ._logger import AuditLogger

__all__ = [
    "AuditError",
    "AuditLogger",
    "ChainVerdict",
    "InvalidAuditMetadata",
    "NotInTransaction",
    "validate_metadata",
    "verify_chain",
]
