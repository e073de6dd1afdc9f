"""`workflow logs search` through CliRunner: CLI.md's output, messages and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from autokestra_obs_cli import cli
from autokestra_obs_cli._cmd_logs_search import HitRenderer
from autokestra_obs_schema import iso_from_ms, open_reader, open_writer
from autokestra_obs_store import LogStore, log_record_document

T0 = 1_795_629_600_000  # 2026-11-25T18:00:00.000Z
ROWS = [
    # execution, workflow, task, timestamp, level, message
    ("e-1", "etl", "load", T0 + 1, "ERROR", "Connection refused: db-primary:5432"),
    ("e-2", "etl", "fetch", T0 + 2, "WARN", "connection REFUSED by cache-1"),
    ("e-3", "deploy", None, T0 + 3, "INFO", "connection was refused\nsecond line"),
    ("e-3", "deploy", "push", T0 + 4, "ERROR", "timed out \x1b[31mred\x1b[0m refused"),
]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "ak.db"
    writer = open_writer(path)
    with writer.transaction() as conn:
        for eid, workflow in {(r[0], r[1]) for r in ROWS}:
            conn.execute(
                "INSERT INTO executions (execution_id, workflow_id, state, created_at,"
                " updated_at) VALUES (?, ?, 'SUCCESS', 0, 0)",
                (eid, workflow),
            )
        for eid, _, task, ts, level, message in ROWS:
            conn.execute(
                "INSERT INTO execution_logs (execution_id, task_id, attempt, timestamp, level,"
                " source, message) VALUES (?, ?, ?, ?, ?, 'plugin:core/shell.run', ?)",
                (eid, task, 1 if task else None, ts, level, message),
            )
    writer.close()
    return path


def search(db: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", str(db), "logs", "search", *args])


def iso(offset: int) -> str:
    return iso_from_ms(T0 + offset)


class TestText:
    def test_one_line_per_hit_newest_first(self, db: Path) -> None:
        """`<execution_id> <logs line>`; continuation lines indented under the message."""
        result = search(db, "connection", "refused")
        assert result.exit_code == 0, result.output
        head = f"e-3 {iso(3)} INFO  [plugin:core/shell.run] - "
        assert result.stdout == (
            f"{head}connection was refused\n"
            f"{' ' * len(head)}second line\n"
            f"e-2 {iso(2)} WARN  [plugin:core/shell.run] fetch connection REFUSED by cache-1\n"
            f"e-1 {iso(1)} ERROR [plugin:core/shell.run] load Connection refused: db-primary:5432\n"
        )
        assert result.stderr == ""

    def test_line_after_the_id_is_the_logs_line(self, db: Path) -> None:
        """Byte for byte what `execution logs` prints for the entry (escaping included)."""
        hit = search(db, "timed").stdout
        logs = CliRunner().invoke(
            cli, ["--db", str(db), "execution", "logs", "e-3", "--task", "push"]
        )
        assert hit == "e-3 " + logs.stdout
        assert "\x1b" not in hit and "\\x1b[31mred" in hit

    def test_words_are_joined_into_one_query(self, db: Path) -> None:
        assert search(db, '"connection refused"').stdout.count("\n") == 2
        assert search(db, "connection refused").stdout == search(db, "connection  refused").stdout

    def test_no_hit(self, db: Path) -> None:
        result = search(db, "nothingatall")
        assert result.exit_code == 0
        assert result.stdout == ""
        assert result.stderr == "No matching log entries\n"

    def test_invalid_query(self, db: Path) -> None:
        result = search(db, "10.0.0.1")
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr == 'Error: Invalid search query: syntax error near "."\n'

    def test_query_is_required(self, db: Path) -> None:
        assert search(db).exit_code == 2


class TestFilters:
    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            (["--workflow", "deploy"], ["e-3", "e-3"]),
            (["--task", "fetch"], ["e-2"]),
            (["--level", "error,WARN"], ["e-3", "e-2", "e-1"]),
            (["--since", iso(2)], ["e-3", "e-3", "e-2"]),
            (["--until", iso(2)], ["e-2", "e-1"]),
            (["--limit", "1"], ["e-3"]),
        ],
    )
    def test_each_filter(self, db: Path, args: list[str], expected: list[str]) -> None:
        result = search(db, "refused", "--jsonl", *args)
        assert result.exit_code == 0, result.output
        assert [json.loads(line)["execution_id"] for line in result.stdout.splitlines()] == expected

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--level", "loud"], "Invalid log level. Must be one of: DEBUG, INFO, WARN, ERROR"),
            (["--since", "yesterday"], "Invalid time format. Examples: 5m, 2h, 1d"),
            (["--until", "5"], "Invalid time format. Examples: 5m, 2h, 1d"),
        ],
    )
    def test_invalid_filter(self, db: Path, args: list[str], message: str) -> None:
        result = search(db, "refused", *args)
        assert result.exit_code == 1
        assert result.stderr == f"Error: {message}\n"

    @pytest.mark.parametrize("limit", ["0", "99999999999999999999"])
    def test_limit_out_of_range_is_a_usage_error(self, db: Path, limit: str) -> None:
        result = search(db, "refused", "--limit", limit)
        assert result.exit_code == 2
        assert "--limit" in result.stderr


class TestJson:
    def test_records_are_the_logs_records_plus_workflow_id(self, db: Path) -> None:
        result = search(db, "refused", "--json")
        assert result.exit_code == 0
        assert result.stdout.isascii()
        documents = json.loads(result.stdout)
        conn = open_reader(db)
        try:
            expected = [
                {**log_record_document(hit.record), "workflow_id": hit.workflow_id}
                for hit in LogStore(conn).search("refused")
            ]
        finally:
            conn.close()
        assert documents == expected
        assert list(documents[0]) == [
            "id",
            "execution_id",
            "task_id",
            "attempt",
            "timestamp",
            "level",
            "source",
            "message",
            "metadata",
            "workflow_id",
        ]
        assert [d["workflow_id"] for d in documents] == ["deploy", "deploy", "etl", "etl"]

    def test_jsonl_is_one_record_per_line(self, db: Path) -> None:
        lines = search(db, "refused", "--jsonl").stdout.splitlines()
        assert [json.loads(line) for line in lines] == json.loads(
            search(db, "refused", "--json").stdout
        )

    def test_empty_json_is_an_empty_array(self, db: Path) -> None:
        result = search(db, "absent", "--json")
        assert (result.exit_code, result.stdout) == (0, "[]\n")
        assert result.stderr == "No matching log entries\n"
        assert search(db, "absent", "--jsonl").stdout == ""

    def test_json_and_jsonl_exclude_each_other(self, db: Path) -> None:
        assert search(db, "refused", "--json", "--jsonl").exit_code == 2


class TestHighlight:
    def test_matched_words_are_styled_and_text_stays_escaped(self, db: Path) -> None:
        conn = open_reader(db)
        try:
            (hit,) = LogStore(conn).search("timed", highlight=True)
        finally:
            conn.close()
        text = HitRenderer().styled(hit)
        console = Console(force_terminal=True, color_system="standard", width=500)
        with console.capture() as captured:
            console.print(text, end="")
        out = captured.get()
        assert "\x1b[1;7;31mtimed\x1b[0m" in out  # bold reverse, in the level's red
        assert "\\x1b[31mred" in out
        assert text.plain == HitRenderer().line(hit)

    def test_no_highlight_in_a_pipe(self, db: Path) -> None:
        assert "\x1b" not in search(db, "timed").stdout


def test_missing_database_finds_nothing(tmp_path: Path) -> None:
    result = search(tmp_path / "absent.db", "refused")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == "No matching log entries\n"
    assert not (tmp_path / "absent.db").exists()
