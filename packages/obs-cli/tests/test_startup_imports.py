"""Start-up: `workflow --version` and `workflow execution logs ID` import only what they use.

Checked with ``python -X importtime`` on a real process (the console script's own import
path, stdout a pipe): a module in the banned list showing up fails the test. The CPU figures
themselves are tools/bench/startup.py's (timing targets live in benchmarks, not in tests).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from autokestra_obs_schema import Writer, now_ms, open_writer

CLI_SCRIPT = "import sys; from autokestra_obs_cli import main; sys.argv[0] = 'workflow'; main()"
#: Never needed by either command: the engine and what only it uses, and rich for a pipe.
HEAVY_EVERYWHERE = ("autokestra_engine", "yaml", "croniter", "rich")
#: `--version` needs a constant: not even click or the database library.
HEAVY_FOR_VERSION = (
    *HEAVY_EVERYWHERE,
    "click",
    "apsw",
    "autokestra_obs_schema",
    "autokestra_obs_store",
    "importlib.metadata",
    "typing",
)


def imported(args: list[str]) -> set[str]:
    """Every module the CLI imported for ``args`` (its output must succeed)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", CLI_SCRIPT, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    names = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    assert names, "no -X importtime output"
    return names


def banned(names: set[str], heavy: tuple[str, ...]) -> list[str]:
    """The imported modules that are, or belong to, a heavy package."""
    return sorted(n for n in names for h in heavy if n == h or n.startswith(h + "."))


@pytest.fixture
def writer(tmp_path: Path) -> Writer:
    w = open_writer(tmp_path / "s.db")
    try:
        with w.transaction() as conn:
            conn.execute(
                "INSERT INTO executions (execution_id, workflow_id, state, created_at,"
                " updated_at) VALUES ('e1', 'wf', 'SUCCESS', 0, 0)"
            )
            conn.executemany(
                "INSERT INTO execution_logs (execution_id, task_id, attempt, timestamp, level,"
                " source, message, metadata) VALUES ('e1', 't', 1, ?, 'INFO',"
                " 'plugin:core/python.run', ?, NULL)",
                [(now_ms(), f"line {i}") for i in range(1000)],
            )
    finally:
        w.close()
    return w


class TestStartupImports:
    def test_version_imports_nothing_heavy(self) -> None:
        names = imported(["--version"])
        assert banned(names, HEAVY_FOR_VERSION) == []

    def test_logs_to_a_pipe_import_neither_engine_nor_yaml_nor_rich(
        self, writer: Writer, tmp_path: Path
    ) -> None:
        names = imported(["--db", str(tmp_path / "s.db"), "execution", "logs", "e1"])
        assert "autokestra_obs_store" in names  # the command did run
        assert banned(names, HEAVY_EVERYWHERE) == []

    def test_the_check_sees_a_heavy_import(self) -> None:
        """`workflow --help` lists every command, which imports rich: the probe notices."""
        assert banned(imported(["run", "--help"]), HEAVY_EVERYWHERE) != []

    def test_version_constant_is_the_installed_version(self) -> None:
        """The constant --version prints is the distribution's version (no drift)."""
        import importlib.metadata

        from autokestra_obs_cli import main

        assert main.__module__ == "autokestra_obs_cli._entry"
        result = subprocess.run(
            [sys.executable, "-c", CLI_SCRIPT, "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        expected = importlib.metadata.version("autokestra-obs-cli")
        assert result.stdout == f"workflow, version {expected}\n"
