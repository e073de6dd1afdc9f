"""Trace and span ids derived from what they describe, so anyone can compute them again.

Spans are built after the fact from engine events, and a log record names its span by id:
deriving the ids (the trace id is the execution id's 128 bits; a span id is a keyed hash of
execution, task and attempt) lets a log record point at a span that is exported later, and
lets an operator go from an execution id to its trace without a lookup table.

    trace_id_of("0192f1c2-...")                        # int, the UUID's 128 bits
    f"{attempt_span_id(eid, 'fetch', 2):016x}"          # the span of attempt 2 of fetch
"""

from __future__ import annotations

import hashlib
import uuid


def trace_id_of(execution_id: str) -> int:
    """The trace id of an execution: its UUID's 128 bits.

    Raises:
        ValueError: ``execution_id`` is not a UUID.
    """
    return uuid.UUID(execution_id).int


def _span_id(*parts: str) -> int:
    # "\x1f" (unit separator) cannot appear in ids, so ("a", "b/c") and ("a/b", "c") differ.
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8, person=b"autokestra")
    value = int.from_bytes(digest.digest(), "big")
    return value or 1  # 0 is the invalid span id


def execution_span_id(execution_id: str) -> int:
    """The id of an execution's root span."""
    return _span_id("execution", execution_id)


def task_span_id(execution_id: str, task_id: str) -> int:
    """The id of a task run's span."""
    return _span_id("task", execution_id, task_id)


def attempt_span_id(execution_id: str, task_id: str, attempt: int) -> int:
    """The id of one attempt's span."""
    return _span_id("attempt", execution_id, task_id, str(attempt))


def backoff_span_id(execution_id: str, task_id: str, attempt: int) -> int:
    """The id of the retry wait that follows attempt ``attempt``."""
    return _span_id("backoff", execution_id, task_id, str(attempt))
