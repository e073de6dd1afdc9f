"""The audit hash chain's digests, shared by the writer (obs-audit) and verifiers (obs-store).

Each event's ``hash`` is the SHA-256 of its predecessor's hash (of the same execution) and
its own canonical content, so editing any stored field breaks every later link. When the
database has an audit key (``audit.key``), each event also gets a ``keyed_hash``: the
HMAC-SHA256 of exactly the same content under that key, which only a key holder can compute.

    h1 = audit_digest(None, "0190...", "CREATED", 1764096000000, '{"workflow_id": "hello"}')
    k1 = keyed_audit_digest(key, None, "0190...", "CREATED", 1764096000000, '{...}')
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any


def canonical_metadata(metadata: Any) -> str:
    """Serialize metadata the one way the chain hashes it (sorted keys, no spaces, ASCII)."""
    return json.dumps(metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _content(
    prev_hash: str | None, execution_id: str, event_type: str, timestamp: int, metadata_json: str
) -> bytes:
    # ensure_ascii escapes everything else, so the encoding below cannot fail.
    return json.dumps(
        [prev_hash, execution_id, event_type, timestamp, metadata_json],
        separators=(",", ":"),
        ensure_ascii=True,
    ).encode("ascii")


def audit_digest(
    prev_hash: str | None, execution_id: str, event_type: str, timestamp: int, metadata_json: str
) -> str:
    """Return the hex SHA-256 link for one audit event.

    Args:
        prev_hash: the previous event's hash for this execution, ``None`` for the first.
        execution_id: the execution the event belongs to.
        event_type: the event type's name.
        timestamp: the event's Unix ms.
        metadata_json: the metadata exactly as stored in the row.

    Returns:
        64 lowercase hex digits.
    """
    content = _content(prev_hash, execution_id, event_type, timestamp, metadata_json)
    return hashlib.sha256(content).hexdigest()


def keyed_audit_digest(  # noqa: PLR0917  # the same fields, in the same order, as audit_digest
    key: bytes,
    prev_hash: str | None,
    execution_id: str,
    event_type: str,
    timestamp: int,
    metadata_json: str,
) -> str:
    """Return the hex HMAC-SHA256 of one audit event under the audit key.

    It covers what :func:`audit_digest` covers (the previous plain hash included, so an edit
    anywhere before the event changes it too), but cannot be recomputed without ``key``.

    Args:
        key: the audit key's secret bytes.
        prev_hash: the previous event's plain ``hash``, ``None`` for the first.
        execution_id: the execution the event belongs to.
        event_type: the event type's name.
        timestamp: the event's Unix ms.
        metadata_json: the metadata exactly as stored in the row.

    Returns:
        64 lowercase hex digits.
    """
    content = _content(prev_hash, execution_id, event_type, timestamp, metadata_json)
    return hmac.new(key, content, hashlib.sha256).hexdigest()


def keyed_chain_head(
    key: bytes, execution_id: str, event_count: int, last_timestamp: int, last_keyed_hash: str
) -> str:
    """Return the keyed chain head stored with the execution row (``audit_head``).

    It binds the number of events and the newest event's keyed hash and time under the key,
    so deleting the newest events and rewinding the head to an older event needs the key.

    Args:
        key: the audit key's secret bytes.
        execution_id: the execution.
        event_count: how many audit events the execution has.
        last_timestamp: the newest event's Unix ms.
        last_keyed_hash: the newest event's ``keyed_hash``.

    Returns:
        64 lowercase hex digits.
    """
    content = json.dumps(
        ["head", execution_id, event_count, last_timestamp, last_keyed_hash],
        separators=(",", ":"),
        ensure_ascii=True,
    ).encode("ascii")
    return hmac.new(key, content, hashlib.sha256).hexdigest()
