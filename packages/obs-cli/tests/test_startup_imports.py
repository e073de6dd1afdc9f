"""Start-up: `workflow --version` and `workflow execution logs ID` import only what they use.

Checked on a real process (the console script's own import path, stdout a pipe) by the list
of modules loaded when it ends: a module in the banned list showing up fails the test. The CPU
figures themselves are tools/bench/startup.py's (timing targets live in benchmarks, not in tests).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from autokestra_obs_schema import Writer, now_ms, open_writer

#: The console script's own import path; at exit, every loaded module's name to the file in
#: argv[1]. Not `-X importtime`: it writes through sys.stderr, which the CLI reconfigures, and
#: lines went missing (the command's own modules among them), so a heavy import could hide.
CLI_SCRIPT = (
    "import sys\n"
    "out = sys.argv.pop(1)\n"
    "try:\n"
    "    from autokestra_obs_cli import main\n"
    "    sys.argv[0] = 'workflow'\n"
    "    main()\n"
    "finally:\n"
    "    with open(out, 'w') as f:\n"
    "        f.write('\\n'.join(sorted(sys.modules)))\n"
)
#: Never needed by either command: the engine and what only it uses, and rich for a pipe.
HEAVY_EVERYWHERE = ("autokestra_engine", "yaml", "croniter", "rich")
#: What `execution logs` never uses from the read side and the schema: the inspect model and
#: the execution listing (their dataclasses cost more than the command), exports, search,
#: retention, the audit key (hmac, secrets).
HEAVY_FOR_LOGS = (
    *HEAVY_EVERYWHERE,
    "autokestra_obs_store._inspect_model",
    "autokestra_obs_store._inspect",
    "autokestra_obs_store._execution_list",
    "autokestra_obs_store._export",
    "autokestra_obs_store._search",
    "autokestra_obs_store._retention",
    "autokestra_obs_schema._audit_key",
)
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


def imported(args: list[str], tmp_path: Path) -> set[str]:
    """Every module the CLI had loaded when it ended, for ``args`` (its output must succeed)."""
    listing = tmp_path / "modules.txt"
    result = subprocess.run(
        [sys.executable, "-c", CLI_SCRIPT, str(listing), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    names = set(listing.read_text().split())
    assert "autokestra_obs_cli" in names, "no module listing"
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
    def test_version_imports_nothing_heavy(self, tmp_path: Path) -> None:
        names = imported(["--version"], tmp_path)
        assert banned(names, HEAVY_FOR_VERSION) == []

    def test_logs_to_a_pipe_import_neither_engine_nor_yaml_nor_rich(
        self, writer: Writer, tmp_path: Path
    ) -> None:
        names = imported(["--db", str(tmp_path / "s.db"), "execution", "logs", "e1"], tmp_path)
        assert "autokestra_obs_store._log_store" in names  # the command did run
        assert banned(names, HEAVY_FOR_LOGS) == []

    def test_search_to_a_pipe_imports_neither_engine_nor_rich(
        self, writer: Writer, tmp_path: Path
    ) -> None:
        names = imported(["--db", str(tmp_path / "s.db"), "logs", "search", "line"], tmp_path)
        assert "autokestra_obs_store._search" in names  # the command did run
        assert banned(names, HEAVY_EVERYWHERE) == []

    def test_the_check_sees_a_heavy_import(self, tmp_path: Path) -> None:
        """`workflow run --help` imports the engine's command module: the probe notices."""
        assert banned(imported(["run", "--help"], tmp_path), HEAVY_EVERYWHERE) != []

    def test_version_constant_is_the_installed_version(self, tmp_path: Path) -> None:
        """The constant --version prints is the distribution's version (no drift)."""
        import importlib.metadata

        from autokestra_obs_cli import main

        assert main.__module__ == "autokestra_obs_cli._entry"
        result = subprocess.run(
            [sys.executable, "-c", CLI_SCRIPT, str(tmp_path / "modules.txt"), "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        expected = importlib.metadata.version("autokestra-obs-cli")
        assert result.stdout == f"workflow, version {expected}\n"
