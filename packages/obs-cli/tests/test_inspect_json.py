"""`inspect --json`: one object that validates against the documented schema."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from autokestra_obs_cli import cli
from autokestra_obs_schema import SECRET_MASK, open_writer
from autokestra_obs_store.testing import (
    cancelled_execution,
    failure_execution,
    retry_execution,
    running_execution,
    success_execution,
    timeout_execution,
    wide_execution,
    write_execution,
)

ISO = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"
TS = {"type": ["string", "null"], "pattern": ISO}
TS_REQUIRED = {"type": "string", "pattern": ISO}
STATE = {"enum": ["PENDING", "RUNNING", "WAITING", "SUCCESS", "FAILED", "CANCELLED"]}
INT = {"type": "integer"}
INT_OR_NULL = {"type": ["integer", "null"]}
STR_OR_NULL = {"type": ["string", "null"]}
ANY: dict[str, Any] = {}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


#: The schema documented in docs/cli/inspect.md, as a JSON-Schema-like dict.
SCHEMA = _object(
    {
        "execution": _object(
            {
                "execution_id": {"type": "string"},
                "workflow_id": {"type": "string"},
                "state": STATE,
                "in_progress": {"type": "boolean"},
                "trigger_type": {"type": "string"},
                "reason_code": STR_OR_NULL,
                "message": STR_OR_NULL,
                "failed_task_id": STR_OR_NULL,
                "created_at": TS_REQUIRED,
                "started_at": TS,
                "ended_at": TS,
                "updated_at": TS_REQUIRED,
                "duration_ms": INT_OR_NULL,
                "log_entry_count": INT,
                "logs_dropped": INT,
                "cancel_requested_at": TS,
                "cancelled_by": STR_OR_NULL,
                "cancel_reason": STR_OR_NULL,
                "inputs": ANY,
                "workflow_source": STR_OR_NULL,
                "engine_id": STR_OR_NULL,
                "engine_pid": INT_OR_NULL,
                "engine_host": STR_OR_NULL,
                "heartbeat_at": TS,
                "observed_at": TS_REQUIRED,
                "engine_gone_since": TS,
                "parent_execution_id": STR_OR_NULL,
                "parent_task_id": STR_OR_NULL,
                "children": {
                    "type": "array",
                    "items": _object(
                        {
                            "execution_id": {"type": "string"},
                            "task_id": {"type": "string"},
                            "workflow_id": {"type": "string"},
                            "state": STATE,
                        }
                    ),
                },
            }
        ),
        "tasks": {
            "type": "array",
            "items": _object(
                {
                    "task_id": {"type": "string"},
                    "position": INT,
                    "type": {"type": "string"},
                    "state": STATE,
                    "reason_code": STR_OR_NULL,
                    "needs": {"type": "array", "items": {"type": "string"}},
                    "need_states": {"type": "object", "values": {"type": ["string", "null"]}},
                    "attempt_count": INT,
                    "created_at": TS_REQUIRED,
                    "queued_at": TS,
                    "started_at": TS,
                    "ended_at": TS,
                    "duration_ms": INT_OR_NULL,
                    "attempts": {
                        "type": "array",
                        "items": _object(
                            {
                                "attempt": INT,
                                "state": STATE,
                                "reason": STR_OR_NULL,
                                "started_at": TS,
                                "ended_at": TS,
                                "duration_ms": INT_OR_NULL,
                                "exit_code": INT_OR_NULL,
                                "error": {"type": ["object", "null"]},
                                "pid": INT_OR_NULL,
                                "pgid": INT_OR_NULL,
                            }
                        ),
                    },
                    "inputs": {"type": ["object", "null"]},
                    "outputs": {"type": ["object", "null"]},
                    "error": {"type": ["object", "null"]},
                    "child_execution_ids": {"type": "array", "items": {"type": "string"}},
                }
            ),
        },
        "audit_events": {
            "type": "array",
            "items": _object(
                {
                    "id": INT,
                    "event_type": {
                        "enum": [
                            "CREATED",
                            "STARTED",
                            "STATE_CHANGE",
                            "COMPLETED",
                            "FAILED",
                            "CANCELLED",
                            "TIMEOUT",
                        ]
                    },
                    "timestamp": TS_REQUIRED,
                    "metadata": {"type": "object"},
                    "prev_hash": STR_OR_NULL,
                    "hash": {"type": "string"},
                }
            ),
        },
        "timeline": _object(
            {
                "origin": TS_REQUIRED,
                "span_ms": INT,
                "critical_path": {"type": "array", "items": {"type": "string"}},
                "lanes": {
                    "type": "array",
                    "items": _object(
                        {
                            "task_id": {"type": "string"},
                            "state": STATE,
                            "critical": {"type": "boolean"},
                            "running": {"type": "boolean"},
                            "queued_ms": INT_OR_NULL,
                            "start_ms": INT_OR_NULL,
                            "end_ms": INT_OR_NULL,
                            "duration_ms": INT_OR_NULL,
                            "segments": {
                                "type": "array",
                                "items": _object(
                                    {
                                        "kind": {"enum": ["wait", "run"]},
                                        "attempt": INT_OR_NULL,
                                        "state": {"type": ["string", "null"]},
                                        "start_ms": INT,
                                        "end_ms": INT,
                                    }
                                ),
                            },
                        }
                    ),
                },
            }
        ),
    }
)

_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "boolean": bool,
    "null": type(None),
    "object": dict,
    "array": list,
}


def validate(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """A tiny validator for the subset used above: type, enum, pattern, properties,
    required (and no extra keys), items, values."""
    problems: list[str] = []
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        ok = any(
            isinstance(value, _TYPES[k]) and not (k == "integer" and isinstance(value, bool))
            for k in kinds
        )
        if not ok:
            return [f"{path}: {value!r} is not {kinds}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {value!r} not in {schema['enum']}")
    if "pattern" in schema and isinstance(value, str) and not re.match(schema["pattern"], value):
        problems.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict) and "properties" in schema:
        missing = set(schema["required"]) - set(value)
        extra = set(value) - set(schema["properties"])
        problems += [f"{path}: missing {key}" for key in sorted(missing)]
        problems += [f"{path}: undocumented {key}" for key in sorted(extra)]
        for key, sub in schema["properties"].items():
            if key in value:
                problems += validate(value[key], sub, f"{path}.{key}")
    if isinstance(value, dict) and "values" in schema:
        for key, item in value.items():
            problems += validate(item, schema["values"], f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems += validate(item, schema["items"], f"{path}[{index}]")
    return problems


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    path = tmp_path_factory.mktemp("json") / "json.db"
    writer = open_writer(path)
    builders = {
        "success": success_execution,
        "failure": failure_execution,
        "retry": retry_execution,
        "timeout": timeout_execution,
        "cancelled": cancelled_execution,
        "running": running_execution,
    }
    ids = {name: write_execution(writer, build()) for name, build in builders.items()}
    ids["wide"] = write_execution(writer, wide_execution(120, fail_task=30))
    writer.close()
    yield path, ids


def _json(db: tuple[Path, dict[str, str]], name: str, *extra: str) -> tuple[str, Any]:
    path, ids = db
    result = CliRunner().invoke(
        cli, ["--db", str(path), "execution", "inspect", ids[name], "--json", *extra]
    )
    assert result.exit_code == 0, result.output
    return result.stdout, json.loads(result.stdout)


class TestSchema:
    @pytest.mark.parametrize(
        "name", ["success", "failure", "retry", "timeout", "cancelled", "running", "wide"]
    )
    def test_validates_against_documented_schema(
        self, db: tuple[Path, dict[str, str]], name: str
    ) -> None:
        """Every execution's --json document matches the schema, with no undocumented key."""
        _, document = _json(db, name)
        assert validate(document, SCHEMA) == []

    def test_validator_catches_problems(self) -> None:
        """The validator rejects a wrong type, a bad timestamp and an undocumented key."""
        schema = _object({"at": TS_REQUIRED, "n": INT})
        assert validate({"at": "2026-11-25 18:00", "n": True, "x": 1}, schema) == [
            "$: undocumented x",
            "$.at: '2026-11-25 18:00' does not match " + ISO,
            "$.n: True is not ['integer']",
        ]


class TestContent:
    def test_one_ascii_object_without_colour(self, db: tuple[Path, dict[str, str]]) -> None:
        """The output is one JSON object, ASCII only, with no escape sequences."""
        text, document = _json(db, "success")
        assert isinstance(document, dict)
        assert text.isascii()
        assert "\x1b" not in text
        assert set(document) == {"execution", "tasks", "audit_events", "timeline"}

    def test_tasks_attempts_io(self, db: tuple[Path, dict[str, str]]) -> None:
        """Tasks carry attempts, masked inputs, outputs and errors, never truncated."""
        _, document = _json(db, "retry")
        flaky = document["tasks"][0]
        assert [a["state"] for a in flaky["attempts"]] == ["FAILED", "FAILED", "SUCCESS"]
        assert flaky["attempts"][0]["error"]["stderr_tail"] == ["connection refused"]
        _, document = _json(db, "success")
        load = next(t for t in document["tasks"] if t["task_id"] == "load")
        assert load["inputs"]["env"]["PGPASSWORD"] == SECRET_MASK

    def test_live_execution(self, db: tuple[Path, dict[str, str]]) -> None:
        """A running execution is in_progress with elapsed durations and running lanes."""
        _, document = _json(db, "running")
        assert document["execution"]["in_progress"] is True
        assert document["execution"]["ended_at"] is None
        download = next(t for t in document["tasks"] if t["task_id"] == "download")
        assert download["duration_ms"] > 0
        lane = next(x for x in document["timeline"]["lanes"] if x["task_id"] == "download")
        assert lane["running"] is True

    def test_audit_and_timeline(self, db: tuple[Path, dict[str, str]]) -> None:
        """The audit trail and the timeline's critical path are included."""
        _, document = _json(db, "success")
        assert [e["event_type"] for e in document["audit_events"]] == [
            "CREATED",
            "STARTED",
            "COMPLETED",
        ]
        assert document["timeline"]["critical_path"] == ["fetch", "transform", "load"]

    def test_task_filter(self, db: tuple[Path, dict[str, str]]) -> None:
        """With --task, the task list and lanes hold only that task."""
        _, document = _json(db, "failure", "--task", "build")
        assert [t["task_id"] for t in document["tasks"]] == ["build"]
        assert [x["task_id"] for x in document["timeline"]["lanes"]] == ["build"]
        assert validate(document, SCHEMA) == []
