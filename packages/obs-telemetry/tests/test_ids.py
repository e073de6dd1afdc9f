"""Derived trace and span ids: the execution id is the trace id; span ids are stable."""

from __future__ import annotations

import uuid

import pytest

from autokestra_obs_telemetry.otlp import (
    attempt_span_id,
    backoff_span_id,
    execution_span_id,
    task_span_id,
    trace_id_of,
)
from autokestra_obs_telemetry.testing import execution_id


class TestIds:
    def test_trace_id_is_the_execution_uuid(self) -> None:
        """The trace id's 32 hex digits are the execution id without dashes."""
        eid = execution_id()
        assert f"{trace_id_of(eid):032x}" == eid.replace("-", "")
        assert uuid.UUID(eid).version == 7

    def test_span_ids_are_stable_distinct_and_valid(self) -> None:
        """The same inputs give the same 64-bit id; different roles and keys differ; never 0."""
        eid = execution_id()
        ids = [
            execution_span_id(eid),
            task_span_id(eid, "fetch"),
            task_span_id(eid, "load"),
            attempt_span_id(eid, "fetch", 1),
            attempt_span_id(eid, "fetch", 2),
            backoff_span_id(eid, "fetch", 1),
            execution_span_id(execution_id()),
        ]
        assert len(set(ids)) == len(ids)
        assert all(0 < span_id < 2**64 for span_id in ids)
        assert attempt_span_id(eid, "fetch", 2) == attempt_span_id(eid, "fetch", 2)

    def test_not_a_uuid(self) -> None:
        """An execution id that is not a UUID has no trace id."""
        with pytest.raises(ValueError, match="badly formed"):
            trace_id_of("exec-1")
