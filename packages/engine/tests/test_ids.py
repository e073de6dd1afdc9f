"""Execution ids: UUID version 7, time-ordered, unique."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from autokestra_engine.persistence._ids import (
    new_engine_id,
    new_execution_id,
    uuid7,
    uuid7_timestamp_ms,
    uuid_version,
)


class TestUuid7:
    def test_version_and_variant(self) -> None:
        """Every id is an RFC 9562 UUID with version 7 and the 10 variant bits."""
        for _ in range(200):
            value = uuid7()
            assert value.version == 7
            assert value.variant == uuid.RFC_4122

    def test_timestamp_is_now(self) -> None:
        """The leading 48 bits are the creation time in Unix milliseconds."""
        before = time.time_ns() // 1_000_000
        text = new_execution_id()
        after = time.time_ns() // 1_000_000
        assert before <= uuid7_timestamp_ms(text) <= after + 1

    def test_strictly_increasing_in_a_burst(self) -> None:
        """Ids made in a tight loop (many per millisecond) sort in creation order."""
        ids = [new_execution_id() for _ in range(20_000)]
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)

    def test_unique_across_threads(self) -> None:
        """Ids made concurrently by several threads never collide."""
        made: list[str] = []
        lock = threading.Lock()

        def work() -> None:
            local = [new_execution_id() for _ in range(2000)]
            with lock:
                made.extend(local)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(made)) == 8000

    def test_engine_ids_are_uuid7_too(self) -> None:
        """Engine ids share the format, so they sort by engine start time."""
        assert uuid_version(new_engine_id()) == 7

    def test_uuid_version_of_non_uuid(self) -> None:
        """A text that is no UUID has no version."""
        assert uuid_version("not-a-uuid") is None
        assert uuid_version(str(uuid.uuid4())) == 4

    def test_timestamp_of_other_version_is_refused(self) -> None:
        """Only a version 7 UUID carries a timestamp."""
        with pytest.raises(ValueError, match="version 7"):
            uuid7_timestamp_ms(str(uuid.uuid4()))
