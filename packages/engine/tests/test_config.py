"""load_config: defaults < file < AUTOKESTRA_* environment < --db; one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autokestra_engine import ConfigError, EngineConfig, load_config, parse_size_bytes
from autokestra_engine._config import DEFAULT_PLUGIN_DIR
from autokestra_obs_schema import DEFAULT_DB_PATH

FULL = """\
storage: {path: data/autokestra.db}
execution: {max_concurrent_tasks: 4, default_task_timeout: 30m, shutdown_grace: 10s}
logging: {retention_days: 7, buffer_max_entries: 50, buffer_max_age: 500ms, table_size_warning: 2GB}
plugins: {path: [./my-plugins, /opt/plugins]}
secrets: {file: ./secrets.env}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "autokestra.yaml"
    path.write_text(text)
    return path


class TestDefaults:
    def test_no_file_no_env(self) -> None:
        """Without file or environment every setting has its documented default."""
        config = load_config(None, {})
        assert config.db_path == DEFAULT_DB_PATH
        assert config.max_concurrent_tasks == max(2, os.cpu_count() or 1)
        assert config.default_task_timeout_ms == 3_600_000
        assert config.retention_days == 30
        assert config.buffer_max_entries == 100
        assert config.buffer_max_age_ms == 1000
        assert config.table_size_warning_bytes == 1024**3
        assert config.plugin_paths == [DEFAULT_PLUGIN_DIR]
        assert config.secrets_file is None
        assert config.shutdown_grace_ms == 30_000

    def test_dataclass_defaults_match(self) -> None:
        """EngineConfig() and load_config(None, {}) agree."""
        assert EngineConfig() == load_config(None, {})

    def test_empty_file_is_fine(self, tmp_path: Path) -> None:
        """An empty config file means all defaults."""
        assert load_config(write(tmp_path, ""), {}).retention_days == 30


class TestFile:
    def test_every_key_is_read(self, tmp_path: Path) -> None:
        """Every documented key is read; relative paths are relative to the file's folder."""
        config = load_config(write(tmp_path, FULL), {})
        assert config.db_path == tmp_path / "data/autokestra.db"
        assert config.max_concurrent_tasks == 4
        assert config.default_task_timeout_ms == 1_800_000
        assert config.shutdown_grace_ms == 10_000
        assert config.retention_days == 7
        assert config.buffer_max_entries == 50
        assert config.buffer_max_age_ms == 500
        assert config.table_size_warning_bytes == 2 * 1024**3
        assert config.plugin_paths == [
            tmp_path / "my-plugins",
            Path("/opt/plugins"),
            DEFAULT_PLUGIN_DIR,
        ]
        assert config.secrets_file == tmp_path / "secrets.env"

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            ("storage: {pth: x}", "unknown key storage.pth"),
            ("store: {path: x}", "unknown section 'store'"),
            ("execution: {max_concurrent_tasks: 0}", "execution.max_concurrent_tasks must be"),
            ("execution: {max_concurrent_tasks: two}", "must be a positive integer"),
            ("execution: {default_task_timeout: 1 hour}", "execution.default_task_timeout"),
            ("logging: {buffer_max_age: 10}", "logging.buffer_max_age must be a duration"),
            ("logging: {table_size_warning: lots}", "logging.table_size_warning"),
            ("logging: {retention_days: -3}", "logging.retention_days"),
            ("plugins: {path: 3}", "plugins.path must be a list"),
            ("storage: {path: ''}", "storage.path must be a non-empty path"),
            ("- a list", "expected a mapping"),
            ("storage: [1]", "storage must be a mapping"),
            ("storage: {path: x\n", "at 2:1"),
        ],
    )
    def test_bad_values_raise_one_line(self, tmp_path: Path, text: str, fragment: str) -> None:
        """Each bad key or value is a ConfigError naming it, on one line."""
        with pytest.raises(ConfigError) as info:
            load_config(write(tmp_path, text), {})
        assert fragment in str(info.value)
        assert "\n" not in str(info.value)

    def test_unreadable_file(self, tmp_path: Path) -> None:
        """A config file that cannot be read is a ConfigError."""
        with pytest.raises(ConfigError, match="cannot read config file"):
            load_config(tmp_path / "missing.yaml", {})


class TestPrecedence:
    def test_environment_wins_over_file(self, tmp_path: Path) -> None:
        """AUTOKESTRA_* variables override the file, key by key."""
        env = {
            "AUTOKESTRA_DB": "env.db",
            "AUTOKESTRA_MAX_CONCURRENT_TASKS": "9",
            "AUTOKESTRA_DEFAULT_TASK_TIMEOUT": "5s",
            "AUTOKESTRA_LOG_RETENTION_DAYS": "3",
            "AUTOKESTRA_LOG_BUFFER_MAX_ENTRIES": "10",
            "AUTOKESTRA_LOG_BUFFER_MAX_AGE": "2s",
            "AUTOKESTRA_TABLE_SIZE_WARNING": "512MB",
            "AUTOKESTRA_SECRETS_FILE": "/etc/ak.env",
            "AUTOKESTRA_SHUTDOWN_GRACE": "1m",
        }
        config = load_config(write(tmp_path, FULL), env)
        assert config.db_path == Path("env.db")
        assert config.max_concurrent_tasks == 9
        assert config.default_task_timeout_ms == 5000
        assert config.retention_days == 3
        assert config.buffer_max_entries == 10
        assert config.buffer_max_age_ms == 2000
        assert config.table_size_warning_bytes == 512 * 1024**2
        assert config.secrets_file == Path("/etc/ak.env")
        assert config.shutdown_grace_ms == 60_000

    def test_cli_db_wins_over_everything(self, tmp_path: Path) -> None:
        """--db beats AUTOKESTRA_DB and storage.path."""
        config = load_config(
            write(tmp_path, FULL), {"AUTOKESTRA_DB": "env.db"}, cli_db=Path("cli.db")
        )
        assert config.db_path == Path("cli.db")

    def test_empty_variable_is_ignored(self, tmp_path: Path) -> None:
        """An empty AUTOKESTRA_* variable does not override the file."""
        config = load_config(write(tmp_path, FULL), {"AUTOKESTRA_LOG_RETENTION_DAYS": ""})
        assert config.retention_days == 7

    def test_bad_environment_value_names_the_variable(self) -> None:
        """A bad environment value names the variable."""
        with pytest.raises(ConfigError, match="AUTOKESTRA_MAX_CONCURRENT_TASKS"):
            load_config(None, {"AUTOKESTRA_MAX_CONCURRENT_TASKS": "-1"})

    def test_plugin_paths_add_up_environment_first(self, tmp_path: Path) -> None:
        """AUTOKESTRA_PLUGIN_PATH folders come before the file's, ./plugins always last."""
        config = load_config(
            write(tmp_path, "plugins: {path: [a]}"), {"AUTOKESTRA_PLUGIN_PATH": "/x:/y"}
        )
        assert config.plugin_paths == [Path("/x"), Path("/y"), tmp_path / "a", DEFAULT_PLUGIN_DIR]


class TestSizes:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("1GB", 1024**3),
            ("512MB", 512 * 1024**2),
            ("10KiB", 10240),
            ("100", 100),
            ("2 TB", 2 * 1024**4),
        ],
    )
    def test_sizes(self, text: str, expected: int) -> None:
        """Sizes take B/KB/MB/GB/TB (powers of 1024) or plain bytes."""
        assert parse_size_bytes(text) == expected

    @pytest.mark.parametrize("text", ["", "1.5GB", "-1GB", "GB", "1 gigabyte"])
    def test_bad_sizes(self, text: str) -> None:
        """Fractions, signs and unknown units are rejected."""
        with pytest.raises(ValueError, match="not a size"):
            parse_size_bytes(text)
