"""Execution identifiers: UUID version 7 (RFC 9562), time-ordered and unique across databases.

Python 3.11's :mod:`uuid` has no ``uuid7``. The 48-bit millisecond timestamp leads, so ids
sort by creation time; within one millisecond a 12-bit counter keeps the ids of this process
strictly increasing, and 62 random bits keep two processes (or two databases) apart.

    >>> eid = new_execution_id()
    >>> uuid_version(eid)
    7
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid

_COUNTER_MAX = 0xFFF
_lock = threading.Lock()
_last_ms = 0
_counter = 0


def _next_time_and_counter() -> tuple[int, int]:
    """The (ms, counter) pair of the next id: never equal to, never before, the previous one."""
    global _last_ms, _counter  # noqa: PLW0603 - process-wide monotonic clock state, guarded
    with _lock:
        now = time.time_ns() // 1_000_000
        if now > _last_ms:
            _last_ms = now
            # Start low in the counter space so a burst in one ms rarely overflows it.
            _counter = secrets.randbits(10)
        else:
            # Same millisecond (or the wall clock stepped back): count up from the last id.
            _counter += 1
            if _counter > _COUNTER_MAX:
                _last_ms += 1
                _counter = 0
        return _last_ms, _counter


def uuid7() -> uuid.UUID:
    """A new UUID version 7, greater than every UUID7 this process made before.

    Returns:
        The UUID: 48-bit Unix ms timestamp, version 7, 12-bit counter, variant 10, 62
        random bits.
    """
    ms, counter = _next_time_and_counter()
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= secrets.randbits(62)
    return uuid.UUID(int=value)


def new_execution_id() -> str:
    """A new execution id: the canonical text of a fresh :func:`uuid7`."""
    return str(uuid7())


def new_engine_id() -> str:
    """A new engine-process id (also a UUID7), recorded in ``executions.engine_id``."""
    return str(uuid7())


def uuid_version(text: str) -> int | None:
    """The version of the UUID in ``text``, or ``None`` when ``text`` is not a UUID."""
    try:
        return uuid.UUID(text).version
    except ValueError:
        return None


def uuid7_timestamp_ms(text: str) -> int:
    """The Unix millisecond timestamp embedded in a UUID7.

    Raises:
        ValueError: ``text`` is not a version 7 UUID.
    """
    parsed = uuid.UUID(text)
    if parsed.version != 7:
        raise ValueError(f"Not a UUID version 7: {text}")
    return parsed.int >> 80
