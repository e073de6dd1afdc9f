"""The configuration is resolved once, on the AppContext: precedence, one parse, lazy engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import autokestra_engine
from autokestra_obs_cli import cli


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with ./autokestra.yaml naming data/config.db, AUTOKESTRA_DB unset."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUTOKESTRA_DB", raising=False)
    (tmp_path / "autokestra.yaml").write_text("storage:\n  path: ./data/config.db\n")
    return tmp_path


def _status_path(args: list[str], env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(cli, [*args, "db", "migrate"], env=env)
    assert result.exit_code == 0, result.output
    # The last line: "Database <path> is at schema version N".
    return result.stdout.splitlines()[-1].split()[1]


class TestPrecedence:
    def test_db_option_beats_everything(self, project: Path) -> None:
        """--db wins over AUTOKESTRA_DB and the config file."""
        path = _status_path(["--db", "opt.db"], env={"AUTOKESTRA_DB": "env.db"})
        assert path == "opt.db"

    def test_environment_beats_config_file(self, project: Path) -> None:
        """AUTOKESTRA_DB wins over storage.path."""
        assert _status_path([], env={"AUTOKESTRA_DB": "env.db"}) == "env.db"

    def test_config_file_beats_default(self, project: Path) -> None:
        """storage.path (relative to the file's folder) wins over the default path."""
        assert Path(_status_path([])) == Path("data/config.db")

    def test_default_without_config(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """With nothing set the database is ./.autokestra/autokestra.db."""
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("AUTOKESTRA_DB", raising=False)
        assert Path(_status_path([])) == Path(".autokestra/autokestra.db")


class TestParsedOnce:
    def test_config_file_is_parsed_once_per_command(
        self, project: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A command needing the database path and two settings loads the config once."""
        calls: list[Any] = []
        real = autokestra_engine.load_config

        def counting(*args: Any, **kwargs: Any) -> Any:
            calls.append(args)
            return real(*args, **kwargs)

        monkeypatch.setattr(autokestra_engine, "load_config", counting)
        assert CliRunner().invoke(cli, ["db", "migrate"]).exit_code == 0
        calls.clear()
        result = CliRunner().invoke(cli, ["logs", "cleanup", "--dry-run"])
        assert result.exit_code == 0, result.output
        assert len(calls) == 1
        calls.clear()
        # db status: the database path and the size-warning setting, from the same parse.
        status = CliRunner().invoke(cli, ["db", "status", "--json"])
        assert status.exit_code == 0, status.output
        assert len(calls) == 1


class TestStartUp:
    def _imported(self, cwd: Path, *args: str) -> list[str]:
        code = (
            "import sys\n"
            "from autokestra_obs_cli import main\n"
            f"sys.argv = ['workflow', *{list(args)!r}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted({m.split('.')[0] for m in sys.modules"
            " if m.startswith(('autokestra_engine', 'yaml'))}))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True
        )
        return list(json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"')))

    def test_logs_without_config_imports_neither_engine_nor_yaml(self, tmp_path: Path) -> None:
        """`execution logs ID` with no config file stays off the engine and YAML."""
        CliRunner().invoke(cli, ["--db", str(tmp_path / "a.db"), "db", "migrate"])
        imported = self._imported(
            tmp_path, "--db", str(tmp_path / "a.db"), "execution", "logs", "nope"
        )
        assert imported == []

    def test_logs_with_config_reads_it(self, project: Path) -> None:
        """With a config file and no --db, the file is read (through the engine's loader)."""
        assert "autokestra_engine" in self._imported(project, "execution", "logs", "nope")
