"""`workflow execution logs` through CliRunner: every flag, message and exit code of CLI.md."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from autokestra_obs_cli import cli
from autokestra_obs_cli._logs_render import IsoClock
from autokestra_obs_schema import iso_from_ms, now_ms, open_writer
from autokestra_obs_store import LogRecord, log_record_document, log_record_json

Row = tuple[str | None, int | None, int, str, str, str, str | None]

T0 = 1_795_629_600_000  # 2026-11-25T18:00:00.000Z

#: Untrusted plugin output that must never reach a terminal raw.
HOSTILE = [
    "csi \x1b[31mred\x1b[0m",
    "osc \x1b]0;pwned title\x07 and \x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\",
    "carriage\rreturn overwrite",
    "back\x08\x08space",
    "c1 csi \x9b31m and \x85 nel",
    "bidi \u202eevil\u202c \u2066iso\u2069",
    "[bold]markup[/bold] [link=http://x]l[/link] :smile:",
    "nul \x00 del \x7f bell \x07",
]
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def make_db(path: Path, executions: dict[str, str], rows: dict[str, Sequence[Row]]) -> Path:
    """Create a database with ``executions`` (id -> state) and their log rows."""
    writer = open_writer(path)
    with writer.transaction() as conn:
        for execution_id, state in executions.items():
            conn.execute(
                "INSERT INTO executions (execution_id, workflow_id, state, created_at,"
                " updated_at) VALUES (?, 'wf', ?, 0, 0)",
                (execution_id, state),
            )
        for execution_id, entries in rows.items():
            conn.executemany(
                "INSERT INTO execution_logs (execution_id, task_id, attempt, timestamp, level,"
                " source, message, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(execution_id, *row) for row in entries],
            )
    writer.close()
    return path


def run(db: Path, *args: str) -> Result:
    """Invoke ``workflow --db DB execution logs ARGS``."""
    return CliRunner().invoke(cli, ["--db", str(db), "execution", "logs", *args])


STANDARD: list[Row] = [
    (None, None, T0 + 1, "INFO", "scheduler", "execution started", None),
    ("build", 1, T0 + 10, "DEBUG", "plugin:core/shell.run", "cc -O2 main.c", None),
    ("build", 1, T0 + 20, "WARN", "plugin:core/shell.run", "warning: unused x", None),
    ("build", 1, T0 + 30, "ERROR", "plugin:core/shell.run", "exit 2", '{"exit_code": 2}'),
    ("build", 2, T0 + 40, "INFO", "worker", "retry 1 of build", None),
    ("build", 2, T0 + 50, "INFO", "plugin:core/shell.run", "compiled\nin 2 steps", None),
    ("test", 1, T0 + 60, "INFO", "plugin:acme/probe.run", "100% passed_all", None),
    ("test", 1, T0 + 70, "INFO", "plugin:acme/probe.run", "it's C:\\tmp", None),
]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A database with one FAILED execution 'e1' (STANDARD rows), 'e2' empty, 'e3' SUCCESS."""
    return make_db(
        tmp_path / "a.db",
        {"e1": "FAILED", "e2": "RUNNING", "e3": "SUCCESS"},
        {"e1": STANDARD, "e3": [("t", 1, T0, "INFO", "worker", "done", None)]},
    )


def lines_of(result: Result) -> list[str]:
    """stdout split into lines."""
    return result.stdout.splitlines()


def messages_of(result: Result) -> list[str]:
    """The message column of each entry of text output (first line of each entry)."""
    return [
        line.split("] ", 1)[1].split(" ", 1)[1] for line in lines_of(result) if line[:1].isdigit()
    ]


class TestTextOutput:
    def test_default_prints_every_entry_in_the_documented_format(self, db: Path) -> None:
        """One line per entry: ISO timestamp, level padded to 5, [source], task or -, message."""
        result = run(db, "e1")
        assert result.exit_code == 0
        assert result.stderr == ""
        lines = lines_of(result)
        assert lines[0] == "2026-11-25T18:00:00.001Z INFO  [scheduler] - execution started"
        assert lines[2] == (
            "2026-11-25T18:00:00.020Z WARN  [plugin:core/shell.run] build warning: unused x"
        )
        assert lines[3].startswith("2026-11-25T18:00:00.030Z ERROR [plugin:core/shell.run] ")
        assert len(lines) == len(STANDARD) + 1  # one continuation line

    def test_continuation_lines_are_indented_to_the_message_column(self, db: Path) -> None:
        """A multi-line message continues under the column where the message starts."""
        lines = lines_of(run(db, "e1"))
        first = next(i for i, line in enumerate(lines) if line.endswith("compiled"))
        column = lines[first].index("compiled")
        assert lines[first + 1] == " " * column + "in 2 steps"

    def test_no_colour_outside_a_terminal(self, db: Path) -> None:
        """CliRunner's stdout is not a TTY: no escape sequence at all."""
        assert "\x1b" not in run(db, "e1").stdout

    def test_no_color_flag_is_accepted(self, db: Path) -> None:
        """--no-color is accepted and changes nothing in a pipe."""
        assert run(db, "e1", "--no-color").stdout == run(db, "e1").stdout


class TestFilters:
    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            (["--task", "test"], ["100% passed_all", "it's C:\\tmp"]),
            (["--level", "error,WARN"], ["warning: unused x", "exit 2"]),
            (["--level", "debug"], ["cc -O2 main.c"]),
            (["--source", "worker"], ["retry 1 of build"]),
            (["--source", "plugin:acme"], ["100% passed_all", "it's C:\\tmp"]),
            (["--grep", "COMPILED"], ["compiled"]),
            (["--grep", "100%"], ["100% passed_all"]),
            (["--grep", "%"], ["100% passed_all"]),
            (["--grep", "_"], ["100% passed_all"]),
            (["--grep", "'"], ["it's C:\\tmp"]),
            (["--grep", "\\"], ["it's C:\\tmp"]),
            (["--grep", "C:\\t"], ["it's C:\\tmp"]),
            (["--grep", "e_1"], []),
            (["--attempt", "2"], ["retry 1 of build", "compiled"]),
            (["--attempt", "1", "--task", "build", "--level", "warn"], ["warning: unused x"]),
            (["--tail", "2"], ["100% passed_all", "it's C:\\tmp"]),
            (["--tail", "1", "--task", "build"], ["compiled"]),
        ],
    )
    def test_filter_flags(self, db: Path, args: list[str], expected: list[str]) -> None:
        """Each filter flag selects exactly the documented entries, oldest first."""
        result = run(db, "e1", *args)
        assert result.exit_code == 0, result.stderr
        assert messages_of(result) == expected

    def test_grep_ignores_case_beyond_ascii(self, tmp_path: Path) -> None:
        """--grep is case-insensitive (CLI.md) for accented letters too, text and --follow."""
        rows: list[Row] = [
            ("t", 1, T0 + 1, "ERROR", "worker", "ÉCHEC: disque plein", None),
            ("t", 1, T0 + 2, "INFO", "worker", "tout va bien", None),
        ]
        db = make_db(tmp_path / "u.db", {"e": "FAILED"}, {"e": rows})
        assert messages_of(run(db, "e", "--grep", "échec")) == ["ÉCHEC: disque plein"]
        assert messages_of(run(db, "e", "--grep", "Échec", "-f")) == ["ÉCHEC: disque plein"]

    def test_since_duration_counts_back_from_now(self, tmp_path: Path) -> None:
        """--since 5m keeps entries of the last five minutes, the cutoff included."""
        now = now_ms()
        rows: list[Row] = [
            (None, None, now - 3_600_000, "INFO", "worker", "an hour ago", None),
            (None, None, now - 60_000, "INFO", "worker", "a minute ago", None),
        ]
        db = make_db(tmp_path / "s.db", {"e": "RUNNING"}, {"e": rows})
        assert messages_of(run(db, "e", "--since", "5m")) == ["a minute ago"]
        assert messages_of(run(db, "e", "--since", "2h")) == ["an hour ago", "a minute ago"]
        assert messages_of(run(db, "e", "--since", "1h30m")) == ["an hour ago", "a minute ago"]

    def test_since_timestamp_includes_the_cutoff(self, db: Path) -> None:
        """--since with an ISO timestamp keeps entries at exactly that instant."""
        result = run(db, "e1", "--since", iso_from_ms(T0 + 60))
        assert messages_of(result) == ["100% passed_all", "it's C:\\tmp"]
        result = run(db, "e1", "--since", "2026-11-25T19:00:00.061+01:00")
        assert messages_of(result) == ["it's C:\\tmp"]


class TestMessagesAndExitCodes:
    def test_unknown_execution(self, db: Path) -> None:
        """An unknown id: 'Error: Execution not found: <id>' on stderr, exit 1."""
        result = run(db, "nope")
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr == "Error: Execution not found: nope\n"

    def test_missing_database_is_execution_not_found(self, tmp_path: Path) -> None:
        """Without a database file no execution exists: the same message, no file created."""
        result = run(tmp_path / "none.db", "abc")
        assert result.exit_code == 1
        assert result.stderr == "Error: Execution not found: abc\n"
        assert not (tmp_path / "none.db").exists()

    def test_no_logs_for_execution(self, db: Path) -> None:
        """An execution without entries: message on stderr, nothing on stdout, exit 0."""
        result = run(db, "e2")
        assert result.exit_code == 0
        assert result.stdout == ""
        assert result.stderr == "No logs found for execution e2\n"

    def test_no_logs_for_task(self, db: Path) -> None:
        """--task without entries names the task and execution."""
        result = run(db, "e1", "--task", "deploy")
        assert result.exit_code == 0
        assert result.stdout == ""
        assert result.stderr == "No logs found for task deploy in execution e1\n"

    def test_no_logs_when_filters_match_nothing(self, db: Path) -> None:
        """Filters that match nothing report the empty result the same way."""
        result = run(db, "e1", "--grep", "no such text")
        assert (result.exit_code, result.stdout) == (0, "")
        assert result.stderr == "No logs found for execution e1\n"

    @pytest.mark.parametrize("value", ["TRACE", "error,", "", "info;warn", "ERRORS"])
    def test_invalid_level(self, db: Path, value: str) -> None:
        """A bad --level: CLI.md's message, exit 1."""
        result = run(db, "e1", "--level", value)
        assert result.exit_code == 1
        assert result.stderr == (
            "Error: Invalid log level. Must be one of: DEBUG, INFO, WARN, ERROR\n"
        )

    @pytest.mark.parametrize(
        "value",
        [
            "", "0", "0s", "0m0s", "-5m", "+5m", "5", "1.5h", "5 m", "5M", "5min", "5w", "5y",
            "m", "h5", "5m1h", "5m5m", "99999999999999d", "36501d", "1e3s", "abc", "now",
            "yesterday", "2026-11-25", "2026-11-25T18:00:00", "2026-11-25 18:00:00Z",
            "2026-13-01T00:00:00Z", "2026-11-25T18:00:00+25:00", "\x1b[31m5m", "5m;DROP",
            "1h 30m", "30 s",
        ],
    )  # fmt: skip
    def test_invalid_since_values(self, db: Path, value: str) -> None:
        """Each bad --since value: 'Invalid time format...', exit 1, never a traceback."""
        result = run(db, "e1", "--since", value)
        assert result.exit_code == 1
        assert result.stderr == "Error: Invalid time format. Examples: 5m, 2h, 1d\n"
        assert result.stdout == ""

    @pytest.mark.parametrize(
        "args",
        [
            ["--attempt", "0"],
            ["--attempt", "x"],
            ["--attempt", "99999999999999999999"],
            ["--tail", "0"],
            ["--tail", "-3"],
            ["--json", "--jsonl"],
            [],
        ],
    )
    def test_usage_errors_exit_2(self, db: Path, args: list[str]) -> None:
        """Bad integers, conflicting formats and a missing id are usage errors: exit 2."""
        result = run(db, *(["e1"] if args else []), *args)
        assert result.exit_code == 2

    def test_too_long_grep_text(self, db: Path) -> None:
        """A --grep text over 4096 characters is refused with one line, exit 1."""
        result = run(db, "e1", "--grep", "x" * 4097)
        assert result.exit_code == 1
        assert result.stderr == "Error: Invalid grep text: longer than 4096 characters\n"

    def test_unknown_id_is_escaped_in_the_message(self, db: Path) -> None:
        """Control characters in the id echoed back are made visible."""
        result = run(db, "a\x1b[2Jb")
        assert result.stderr == "Error: Execution not found: a\\x1b[2Jb\n"

    @pytest.mark.parametrize(
        ("execution", "code"), [("e1", 1), ("e3", 0), ("e2", 0)]
    )  # FAILED, SUCCESS, RUNNING
    def test_exit_status(self, db: Path, execution: str, code: int) -> None:
        """--exit-status exits 1 for an execution that ended FAILED/CANCELLED, else 0."""
        assert run(db, execution, "--exit-status").exit_code == code
        assert run(db, execution).exit_code == 0


class TestJson:
    def test_json_is_one_array_with_the_documented_keys(self, db: Path) -> None:
        """--json prints one array of objects with CLI.md's keys, ISO timestamps, metadata."""
        result = run(db, "e1", "--json")
        assert result.exit_code == 0
        data = json.loads(result.stdout)
        assert len(data) == len(STANDARD)
        assert data[0] == {
            "id": 1,
            "execution_id": "e1",
            "task_id": None,
            "attempt": None,
            "timestamp": "2026-11-25T18:00:00.001Z",
            "level": "INFO",
            "source": "scheduler",
            "message": "execution started",
            "metadata": None,
        }
        assert data[3]["metadata"] == {"exit_code": 2}
        assert data[5]["message"] == "compiled\nin 2 steps"

    def test_empty_json_is_an_empty_array(self, db: Path) -> None:
        """With no entries --json prints [] (the message goes to stderr)."""
        result = run(db, "e2", "--json")
        assert json.loads(result.stdout) == []
        assert result.stderr == "No logs found for execution e2\n"

    def test_jsonl_is_one_object_per_line(self, db: Path) -> None:
        """--jsonl prints one object per line with the same content as --json."""
        jsonl = [json.loads(line) for line in lines_of(run(db, "e1", "--jsonl"))]
        assert jsonl == json.loads(run(db, "e1", "--json").stdout)

    def test_empty_jsonl_prints_nothing(self, db: Path) -> None:
        """With no entries --jsonl prints nothing on stdout."""
        assert run(db, "e2", "--jsonl").stdout == ""

    def test_jsonl_follow_of_a_finished_execution_ends_with_the_end_record(self, db: Path) -> None:
        """--follow --jsonl on a finished execution prints it all, then the end record."""
        result = run(db, "e1", "--follow", "--jsonl", "--exit-status")
        assert result.exit_code == 1
        *entries, end = [json.loads(line) for line in lines_of(result)]
        assert len(entries) == len(STANDARD)
        assert end == {"type": "end", "execution_id": "e1", "state": "FAILED"}

    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            (["--tail", "2"], ["100% passed_all", "it's C:\\tmp"]),
            (["--level", "warn,error", "--task", "build"], ["warning: unused x", "exit 2"]),
            (["--since", "2026-11-25T18:00:00.060Z", "--grep", "C:"], ["it's C:\\tmp"]),
            (["--source", "worker", "--attempt", "2"], ["retry 1 of build"]),
        ],
    )
    def test_follow_of_a_finished_execution_applies_filters(
        self, db: Path, args: list[str], expected: list[str]
    ) -> None:
        """--follow on a finished execution prints the filtered entries and the end record."""
        result = run(db, "e1", "--follow", "--jsonl", *args)
        assert result.exit_code == 0
        *entries, end = [json.loads(line) for line in lines_of(result)]
        assert [e["message"] for e in entries] == expected
        assert end["type"] == "end" and end["state"] == "FAILED"

    def test_json_and_text_are_filtered_alike(self, db: Path) -> None:
        """Filters apply to JSON output exactly as to text."""
        data = json.loads(run(db, "e1", "--json", "--level", "error", "--task", "build").stdout)
        assert [d["message"] for d in data] == ["exit 2"]

    def test_many_rows_stream_as_valid_json(self, tmp_path: Path) -> None:
        """Several pages of entries still form one valid array, in order."""
        rows: list[Row] = [(None, None, T0 + i, "INFO", "w", f"m{i}", None) for i in range(2_345)]
        db = make_db(tmp_path / "m.db", {"e": "SUCCESS"}, {"e": rows})
        data: list[dict[str, Any]] = json.loads(run(db, "e", "--json").stdout)
        assert [d["message"] for d in data] == [f"m{i}" for i in range(2_345)]
        assert len(lines_of(run(db, "e"))) == 2_345


class TestJsonEncoding:
    @given(
        message=st.text(),
        task=st.none() | st.text(max_size=10),
        attempt=st.none() | st.integers(min_value=1, max_value=10**6),
        metadata=st.none() | st.dictionaries(st.text(max_size=5), st.integers() | st.text()),
        timestamp=st.integers(min_value=0, max_value=4_102_444_800_000),
    )
    def test_record_json_is_exactly_json_dumps(
        self,
        message: str,
        task: str | None,
        attempt: int | None,
        metadata: dict[str, Any] | None,
        timestamp: int,
    ) -> None:
        """The hand-assembled encoder, fed the CLI's cached clock, prints what json.dumps of
        the record's document prints, for any content."""
        stored = None if metadata is None else json.dumps(metadata, ensure_ascii=False)
        record = LogRecord(
            (7, "e-\u00e9", task, attempt, timestamp, "WARN", "src\x1b", message, stored)
        )
        encoded = log_record_json(record, IsoClock().iso)
        assert encoded == json.dumps(log_record_document(record, iso_from_ms))
        assert encoded.isascii()


class TestHostileOutput:
    @pytest.fixture
    def hostile_db(self, tmp_path: Path) -> Path:
        """Entries whose message, source and task id carry terminal escapes."""
        rows: list[Row] = [
            ("t\x1b[2J", 1, T0 + i, "INFO", "plugin:x\x9b1m", message, None)
            for i, message in enumerate(HOSTILE)
        ]
        return make_db(tmp_path / "h.db", {"e": "SUCCESS"}, {"e": rows})

    def test_text_mode_has_no_raw_control_bytes(self, hostile_db: Path) -> None:
        """Every control character is shown as \\xHH or \\uHHHH; only newlines stay raw."""
        result = run(hostile_db, "e")
        assert result.exit_code == 0
        assert CONTROL.search(result.stdout) is None
        assert "\\x1b[31mred" in result.stdout
        assert "\\x9b31m" in result.stdout
        assert "\\u202eevil" in result.stdout
        assert "carriage\\x0dreturn" in result.stdout
        assert "[bold]markup[/bold]" in result.stdout
        assert "[plugin:x\\x9b1m] t\\x1b[2J " in result.stdout

    def test_json_is_ascii_and_round_trips(self, hostile_db: Path) -> None:
        """--json and --jsonl are ASCII-only and decode back to the stored text."""
        for flag in ("--json", "--jsonl"):
            out = run(hostile_db, "e", flag).stdout
            assert out.isascii()
            assert CONTROL.search(out) is None
        data = json.loads(run(hostile_db, "e", "--json").stdout)
        assert [d["message"] for d in data] == HOSTILE

    @pytest.mark.parametrize("message", HOSTILE)
    def test_grep_for_hostile_text_matches_literally(self, tmp_path: Path, message: str) -> None:
        """--grep of a hostile message finds exactly that message."""
        rows: list[Row] = [
            (None, None, T0 + i, "INFO", "w", m, None) for i, m in enumerate(HOSTILE)
        ]
        db = make_db(tmp_path / "g.db", {"e": "SUCCESS"}, {"e": rows})
        data = json.loads(run(db, "e", "--json", "--grep", message).stdout)
        assert [d["message"] for d in data] == [message]
