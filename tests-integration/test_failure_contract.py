"""End to end, the CLI as a user runs it: DESIGN.md §6.3, §6.7, §6.9-§6.12, §6.14, §6.15.

Every test runs the installed `workflow` script in a subprocess on a real database file.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from e2e import WORKFLOW, rows

pytestmark = pytest.mark.integration

HELLO = """
id: hello
tasks:
  - {id: a, type: core/log.emit, inputs: {message: one}}
  - {id: b, type: core/log.emit, needs: [a], inputs: {message: two}}
  - {id: c, type: core/log.emit, needs: [a], inputs: {message: three}}
"""

#: ESC + CSI, an OSC title sequence, a bidi override, a carriage return, a C1 CSI.
HOSTILE = "x\x1b[31mred\x1b]0;pwned\x07\u202eevil\rback\x9b2J"
RAW = ("\x1b", "\x07", "\u202e", "\r", "\x9b")


def cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AUTOKESTRA")}
    base["NO_COLOR"] = "1"
    return subprocess.run(
        [WORKFLOW, *args],
        cwd=tmp_path,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def db_with_run(tmp_path: Path) -> tuple[Path, str]:
    """A database holding one finished execution of HELLO."""
    (tmp_path / "hello.yaml").write_text(HELLO)
    result = cli(tmp_path, "--db", "ak.db", "run", "hello.yaml")
    assert result.returncode == 0, result.stderr
    return tmp_path / "ak.db", result.stdout.split()[1]


class TestRunExitCode:
    def test_exit_zero_exactly_when_success(self, db_with_run: tuple[Path, str]) -> None:
        """§6.3: the stored state is SUCCESS and run exited 0 (the fixture asserted it)."""
        db, execution_id = db_with_run
        state = rows(db, "SELECT state FROM executions WHERE execution_id = ?", (execution_id,))
        assert state == [("SUCCESS",)]


class TestHostileText:
    """§6.7: control and bidi characters never reach the terminal raw, on any command."""

    def _assert_escaped(self, result: subprocess.CompletedProcess[str]) -> None:
        for stream in (result.stdout, result.stderr):
            for raw in RAW:
                assert raw not in stream, (raw, stream)
        assert "\\x1b" in result.stdout + result.stderr

    @pytest.mark.parametrize(
        "command",
        [
            ["execution", "cancel"],
            ["execution", "logs"],
            ["execution", "logs", "--follow"],
            ["execution", "inspect"],
            ["execution", "inspect", "--verify"],
            ["audit", "verify"],
            ["delete"],
        ],
    )
    def test_hostile_id(
        self, db_with_run: tuple[Path, str], command: list[str], tmp_path: Path
    ) -> None:
        """An id with ESC, OSC, bidi and CR is shown escaped in the error, exit 1."""
        result = cli(tmp_path, "--db", "ak.db", *command, HOSTILE)
        assert result.returncode == 1, result.stderr
        self._assert_escaped(result)
        assert len(result.stderr.strip().splitlines()) == 1  # one line, CLI.md

    @pytest.mark.parametrize(
        "args",
        [
            ["execution", "logs", "{id}", "--task"],
            ["execution", "inspect", "{id}", "--task"],
            ["execution", "list", "--state"],
            ["execution", "list", "--workflow"],
            ["execution", "cancel", "{id}", "--reason"],
        ],
    )
    def test_hostile_option_value(
        self, db_with_run: tuple[Path, str], args: list[str], tmp_path: Path
    ) -> None:
        """A hostile option value never reaches the terminal raw, whatever the outcome."""
        _, execution_id = db_with_run
        argv = [arg.replace("{id}", execution_id) for arg in args]
        result = cli(tmp_path, "--db", "ak.db", *argv, HOSTILE)
        for stream in (result.stdout, result.stderr):
            for raw in RAW:
                assert raw not in stream, (raw, stream)

    @pytest.mark.parametrize("command", [["validate"], ["run"], ["apply"]])
    def test_hostile_file_path(self, tmp_path: Path, command: list[str]) -> None:
        """A missing workflow file with a hostile name: escaped in the error."""
        result = cli(tmp_path, "--db", "ak.db", *command, HOSTILE + ".yaml")
        assert result.returncode in (1, 2)
        self._assert_escaped(result)

    def test_hostile_db_path(self, tmp_path: Path) -> None:
        """A --db naming a missing folder with a hostile name: escaped in the error."""
        result = cli(tmp_path, "--db", f"{HOSTILE}/sub/ak.db", "execution", "list")
        assert result.returncode != 0
        self._assert_escaped(result)

    def test_hostile_config_path(self, tmp_path: Path) -> None:
        """A --config naming a missing hostile file: escaped in the error."""
        result = cli(tmp_path, "--config", HOSTILE + ".yaml", "execution", "list")
        assert result.returncode == 1
        self._assert_escaped(result)


class TestLimits:
    """§6.9: refused before the expensive part, naming the file and the limit."""

    def test_big_file_refused_before_parsing(self, tmp_path: Path) -> None:
        """A 60 MB file: `<file>: the file is <n> bytes; the limit is <m> (...)`."""
        big = tmp_path / "big.yaml"
        with big.open("w") as out:
            out.write("id: big\ntasks:\n")
            line = "  - {id: t, type: core/log.emit, inputs: {message: x}}\n"
            out.write(line * (60_000_000 // len(line)))
        size = big.stat().st_size
        result = cli(tmp_path, "validate", "big.yaml", timeout=30)
        assert result.returncode == 1
        assert (
            f"big.yaml: the file is {size} bytes; the limit is 1048576 (limits.workflow_bytes)"
            in result.stderr
        )

    def test_too_many_tasks(self, tmp_path: Path) -> None:
        """20,000 tasks: `<file>: tasks: 20000 tasks; the limit is 5000 (limits.max_tasks)`."""
        lines = ["id: many", "tasks:"]
        lines += [f"  - {{id: t{i}, type: core/log.emit}}" for i in range(20_000)]
        (tmp_path / "many.yaml").write_text("\n".join(lines) + "\n")
        result = cli(tmp_path, "validate", "many.yaml", timeout=30)
        assert result.returncode == 1
        assert "many.yaml: tasks: 20000 tasks; the limit is 5000 (limits.max_tasks)" in (
            result.stderr
        )

    def test_configured_limits(self, tmp_path: Path) -> None:
        """limits.max_tasks and limits.workflow_bytes come from the config file."""
        (tmp_path / "autokestra.yaml").write_text("limits: {max_tasks: 2, workflow_bytes: 10KB}\n")
        (tmp_path / "hello.yaml").write_text(HELLO)
        result = cli(tmp_path, "validate", "hello.yaml")
        assert result.returncode == 1
        assert "hello.yaml: tasks: 3 tasks; the limit is 2 (limits.max_tasks)" in result.stderr

    def test_deep_nesting(self, tmp_path: Path) -> None:
        """YAML nested 65 levels: `<file>: nested deeper than 64 levels`, no traceback."""
        (tmp_path / "deep.yaml").write_text("id: deep\nx: " + "[" * 65 + "]" * 65 + "\n")
        result = cli(tmp_path, "validate", "deep.yaml")
        assert result.returncode == 1
        assert "deep.yaml: nested deeper than 64 levels" in result.stderr
        very = "id: deep\nx: " + "[" * 5000 + "]" * 5000 + "\n"
        (tmp_path / "deeper.yaml").write_text(very)
        result = cli(tmp_path, "validate", "deeper.yaml")
        assert "deeper.yaml: nested deeper than 64 levels" in result.stderr
        assert "recursion" not in result.stderr

    def test_sixty_four_levels_are_fine(self, tmp_path: Path) -> None:
        """Exactly 64 levels (the root mapping included) is not refused for nesting."""
        (tmp_path / "ok.yaml").write_text("id: deep\nx: " + "[" * 63 + "]" * 63 + "\n")
        result = cli(tmp_path, "validate", "ok.yaml")
        assert "nested deeper" not in result.stderr

    @pytest.mark.parametrize("target", ["/dev/zero", "folder", "fifo"])
    def test_not_a_regular_file(self, tmp_path: Path, target: str) -> None:
        """A device, a folder, a FIFO: `<file>: not a regular file`, at once."""
        (tmp_path / "folder").mkdir()
        os.mkfifo(tmp_path / "fifo")
        for command in ("validate", "run"):
            result = cli(tmp_path, "--db", "ak.db", command, target, timeout=30)
            assert result.returncode == 1, result.stderr
            assert f"{target}: not a regular file" in result.stderr

    def test_lone_surrogate_is_a_validation_problem(self, tmp_path: Path) -> None:
        """A `\\ud800` escape: a problem with its path in validate, nothing stored by run."""
        (tmp_path / "s.yaml").write_text(
            'id: s\ntasks:\n  - {id: a, type: core/log.emit, inputs: {message: "\\ud800"}}\n'
        )
        result = cli(tmp_path, "validate", "s.yaml")
        assert result.returncode == 1
        assert "s.yaml: tasks[0].inputs.message: " in result.stderr
        result = cli(tmp_path, "--db", "ak.db", "run", "s.yaml")
        assert result.returncode == 1
        assert "tasks[0].inputs.message" in result.stderr


class TestConfigAndColour:
    def test_explicit_config_read_with_db(self, tmp_path: Path) -> None:
        """§6.11: --config missing.yaml fails even when --db is given."""
        result = cli(tmp_path, "--db", "ak.db", "--config", "missing.yaml", "execution", "list")
        assert result.returncode == 1
        assert "missing.yaml" in result.stderr

    def test_explicit_config_validated_with_db(self, tmp_path: Path) -> None:
        """§6.11: an invalid explicit config is refused whatever else is given."""
        (tmp_path / "bad.yaml").write_text("nonsense: {a: 1}\n")
        result = cli(tmp_path, "--db", "ak.db", "--config", "bad.yaml", "db", "status")
        assert result.returncode == 1
        assert "unknown section 'nonsense'" in result.stderr

    def test_empty_no_color_keeps_colour(self, db_with_run: tuple[Path, str]) -> None:
        """§6.12: on a TTY, NO_COLOR= (empty) keeps colour; NO_COLOR=1 turns it off."""
        import pty

        db, _ = db_with_run
        seen: dict[str, str] = {}
        for value in ("", "1"):
            leader, follower = pty.openpty()
            try:
                env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOKESTRA")}
                subprocess.run(
                    [WORKFLOW, "--db", str(db), "execution", "list"],
                    env={**env, "NO_COLOR": value, "TERM": "xterm-256color"},
                    stdout=follower,
                    stderr=subprocess.DEVNULL,
                    timeout=60,
                    check=True,
                )
                seen[value] = os.read(leader, 65536).decode("utf-8", "replace")
            finally:
                os.close(leader)
                os.close(follower)
        assert "SUCCESS" in seen[""] and "SUCCESS" in seen["1"]
        assert "\x1b[" in seen[""]
        assert "\x1b[" not in seen["1"]


class TestNumbersAndRollback:
    @pytest.mark.parametrize(
        ("command", "option"),
        [
            (["execution", "list", "--limit"], "--limit"),
            (["execution", "logs", "x", "--tail"], "--tail"),
            (["execution", "logs", "x", "--attempt"], "--attempt"),
            (["db", "rollback", "--steps"], "--steps"),
            (["db", "status", "--size-warning"], "--size-warning"),
        ],
    )
    def test_out_of_range_is_a_usage_error(
        self, tmp_path: Path, command: list[str], option: str
    ) -> None:
        """§6.15: 99999999999999999999 is exit 2 naming the option."""
        result = cli(tmp_path, "--db", "ak.db", *command, "99999999999999999999")
        assert result.returncode == 2
        assert option in result.stderr
        assert "too big" not in result.stderr

    def test_rollback_above_applied_count(self, db_with_run: tuple[Path, str]) -> None:
        """§6.10: N above the applied count names the number; nothing changed."""
        db, _ = db_with_run
        before = rows(db, "SELECT count(*) FROM schema_migrations")
        result = cli(db.parent, "--db", "ak.db", "db", "rollback", "--steps", "999", "--yes")
        assert result.returncode == 1
        assert "999" in result.stderr
        assert rows(db, "SELECT count(*) FROM schema_migrations") == before

    def test_rollback_deleting_rows_needs_yes(self, db_with_run: tuple[Path, str]) -> None:
        """§6.10: without --yes: exit 1, `rollback would delete <n> rows from ...`."""
        db, _ = db_with_run
        applied = rows(db, "SELECT count(*) FROM schema_migrations")[0][0]
        result = cli(db.parent, "--db", "ak.db", "db", "rollback", "--steps", str(applied))
        assert result.returncode == 1
        assert result.stderr.startswith("Error: rollback would delete ")
        assert result.stderr.rstrip().endswith("; add --yes to confirm")
        assert rows(db, "SELECT count(*) FROM schema_migrations")[0][0] == applied
        assert rows(db, "SELECT count(*) FROM execution_audit_events")[0][0] > 0

    def test_rollback_with_yes(self, db_with_run: tuple[Path, str]) -> None:
        """§6.10: with --yes the rollback runs."""
        db, _ = db_with_run
        result = cli(db.parent, "--db", "ak.db", "db", "rollback", "--steps", "1", "--yes")
        assert result.returncode == 0, result.stderr
        assert "Rolled back" in result.stdout


class TestTaskTimestamps:
    def test_queued_started_ended_ordered(self, tmp_path: Path) -> None:
        """§6.14: queued_at <= started_at <= ended_at for every task run, over many runs."""
        lines = ["id: wide", "tasks:"]
        lines += [
            f"  - {{id: t{i}, type: core/log.emit, inputs: {{message: m}}}}" for i in range(12)
        ]
        (tmp_path / "wide.yaml").write_text("\n".join(lines) + "\n")
        for _ in range(3):
            result = cli(tmp_path, "--db", "ak.db", "run", "wide.yaml")
            assert result.returncode == 0, result.stderr
        bad = rows(
            tmp_path / "ak.db",
            "SELECT task_id, queued_at, started_at, ended_at FROM task_runs"
            " WHERE NOT (queued_at <= started_at AND started_at <= ended_at)",
        )
        assert bad == []
        assert rows(tmp_path / "ak.db", "SELECT count(*) FROM task_runs")[0][0] == 36


class TestServerOnReadOnlyDatabase:
    def test_server_start_exits_at_once_naming_the_path(self, tmp_path: Path) -> None:
        """§6.15: `server start` on a database it cannot write: exit 1 at once, the path named."""
        import shutil

        setpriv = shutil.which("setpriv")
        if setpriv is None or os.geteuid() != 0:
            pytest.skip("needs root and setpriv to run as a user who cannot write the file")
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o755)
        tmp_path.chmod(0o755)
        assert cli(folder, "--db", "ak.db", "db", "migrate").returncode == 0
        (folder / "ak.db").chmod(0o444)
        as_nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
        result = subprocess.run(
            [*as_nobody, WORKFLOW, "--db", str(folder / "ak.db"), "server", "start"],
            cwd=folder,
            env={**os.environ, "NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=60,  # "at once": a server that idles would hit this
            check=False,
        )
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("Error: ")
        assert str(folder / "ak.db") in result.stderr
