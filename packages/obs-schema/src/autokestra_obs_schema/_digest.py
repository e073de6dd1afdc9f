"""The audit hash chain's canonical digest, shared by the writer (obs-audit) and verifiers.

Each event's ``hash`` is the SHA-256 of its predecessor's hash (of the same execution) and
its own canonical content, so editing any stored field breaks every later link.

    h1 = audit_digest(None, "0190...", "CREATED", 1764096000000, '{"workflow_id": "hello"}')
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_metadata(metadata: Any) -> str:
    """Serialize metadata the one way the chain hashes it (sorted keys, no spaces, ASCII)."""
    return json.dumps(metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def audit_digest(
    prev_hash: str | None, execution_id: str, event_type: str, timestamp: int, metadata_json: str
) -> str:
    """Return the hex SHA-256 link for one audit event.

    Args:
        prev_hash: the previous event's hash for this execution, ``None`` for the first.
        metadata_json: the metadata exactly as stored in the row.
    """
    content = json.dumps(
        [prev_hash, execution_id, event_type, timestamp, metadata_json],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(content.encode("ascii")).hexdigest()
