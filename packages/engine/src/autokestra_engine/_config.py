"""Engine configuration: defaults, the ``autokestra.yaml`` file, environment variables.

Precedence, lowest to highest: built-in defaults, the config file, ``AUTOKESTRA_*``
environment variables, then ``--db`` for the database path. Every bad value raises
:class:`ConfigError` with one line naming the key and what is expected.

    config = load_config(Path("autokestra.yaml"), os.environ)
    config.max_concurrent_tasks   # 4
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from autokestra_obs_schema import DEFAULT_DB_PATH, AutokestraError, parse_duration_ms

DEFAULT_PLUGIN_DIR = Path("plugins")
#: How plugin attempts of Python commands start (``execution.launcher``).
LauncherMode = Literal["fork", "spawn"]
GIB = 1024**3

#: Config file layout: section -> keys it accepts. Unknown keys are errors (typo guard).
_SECTIONS: dict[str, tuple[str, ...]] = {
    "storage": ("path",),
    "execution": ("max_concurrent_tasks", "default_task_timeout", "shutdown_grace", "launcher"),
    "logging": (
        "retention_days",
        "buffer_max_entries",
        "buffer_max_age",
        "table_size_warning",
        "mask_token_shapes",
    ),
    "plugins": ("path",),
    "secrets": ("file",),
    "telemetry": ("otlp",),
    "limits": ("workflow_bytes", "max_tasks"),
}

#: Environment variable -> (section, key) it overrides.
ENV_VARS: dict[str, tuple[str, str]] = {
    "AUTOKESTRA_DB": ("storage", "path"),
    "AUTOKESTRA_MAX_CONCURRENT_TASKS": ("execution", "max_concurrent_tasks"),
    "AUTOKESTRA_DEFAULT_TASK_TIMEOUT": ("execution", "default_task_timeout"),
    "AUTOKESTRA_SHUTDOWN_GRACE": ("execution", "shutdown_grace"),
    "AUTOKESTRA_LAUNCHER": ("execution", "launcher"),
    "AUTOKESTRA_LOG_RETENTION_DAYS": ("logging", "retention_days"),
    "AUTOKESTRA_LOG_BUFFER_MAX_ENTRIES": ("logging", "buffer_max_entries"),
    "AUTOKESTRA_LOG_BUFFER_MAX_AGE": ("logging", "buffer_max_age"),
    "AUTOKESTRA_TABLE_SIZE_WARNING": ("logging", "table_size_warning"),
    "AUTOKESTRA_PLUGIN_PATH": ("plugins", "path"),
    "AUTOKESTRA_SECRETS_FILE": ("secrets", "file"),
}

_SIZE = re.compile(r"^([0-9]+)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$")
_SIZE_UNITS = {
    None: 1,
    "B": 1,
    "KB": 1024,
    "MB": 1024**2,
    "GB": 1024**3,
    "TB": 1024**4,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
}


class ConfigError(AutokestraError):
    """A configuration value (file or environment) that is missing, malformed or out of range."""


def default_max_concurrent_tasks() -> int:
    """``max(2, CPU count)``: DESIGN.md's default for ``execution.max_concurrent_tasks``."""
    return max(2, os.cpu_count() or 1)


@dataclass(frozen=True)
class EngineConfig:
    """Resolved engine settings (see docs/configuration.md for every key).

    Attributes:
        db_path: the SQLite database file.
        max_concurrent_tasks: task attempts running at once in one engine process.
        default_task_timeout_ms: timeout of a task when neither task nor action sets one.
        retention_days: age after which logs and audit events of finished executions go.
        buffer_max_entries: the log collector flushes a batch at this many entries...
        buffer_max_age_ms: ...or when its oldest entry is this old.
        table_size_warning_bytes: ``db status`` warns when a table is bigger.
        plugin_paths: folders that contain plugin folders, searched in order.
        secrets_file: KEY=VALUE file of secrets (mode 0600), or None.
        shutdown_grace_ms: how long a stopping engine waits for running tasks.
        launcher: how Python plugin attempts start: ``fork`` from a warm fork server
            (default; other commands are still spawned) or ``spawn`` every one.
        config_path: the config file that was read, if any.
        telemetry_otlp: the file's ``telemetry.otlp`` mapping, as written (obs-telemetry
            validates it; the ``OTEL_*`` variables win over it).
        workflow_bytes: ``limits.workflow_bytes``, the largest workflow file accepted.
        max_tasks: ``limits.max_tasks``, the most tasks a workflow may have.
        mask_token_shapes: ``logging.mask_token_shapes``: mask values shaped like known
            credentials (PEM private keys, AWS key ids, GitHub tokens, JWTs) even when
            nobody declared them secret.
    """

    db_path: Path = DEFAULT_DB_PATH
    max_concurrent_tasks: int = field(default_factory=default_max_concurrent_tasks)
    default_task_timeout_ms: int = 3_600_000
    retention_days: int = 30
    buffer_max_entries: int = 100
    buffer_max_age_ms: int = 1000
    table_size_warning_bytes: int = GIB
    plugin_paths: list[Path] = field(default_factory=lambda: [DEFAULT_PLUGIN_DIR])
    secrets_file: Path | None = None
    shutdown_grace_ms: int = 30_000
    launcher: LauncherMode = "fork"
    config_path: Path | None = None
    telemetry_otlp: Mapping[str, Any] = field(default_factory=dict)
    workflow_bytes: int = 1024 * 1024
    max_tasks: int = 5000
    mask_token_shapes: bool = True


def _launcher(name: str, value: Any) -> LauncherMode:
    if value == "fork":
        return "fork"
    if value == "spawn":
        return "spawn"
    raise ConfigError(f"{name} must be fork or spawn, got {value!r}")


def parse_size_bytes(text: str) -> int:
    """Parse a size such as ``1GB``, ``512MiB`` or ``1048576`` (bytes); units are powers of 1024.

    Raises:
        ValueError: not a non-negative integer with an optional unit.
    """
    match = _SIZE.match(text.strip())
    if match is None:
        raise ValueError(f"not a size: {text!r} (examples: 1GB, 512MB, 1048576)")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


def _read_file(path: Path) -> dict[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at {mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"config file {path}{where}: {problem}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping at the top level")
    sections: dict[str, dict[str, Any]] = {}
    for section, body in data.items():
        if section not in _SECTIONS:
            known = ", ".join(_SECTIONS)
            raise ConfigError(f"config file {path}: unknown section {section!r} (known: {known})")
        if body is None:
            sections[section] = {}
            continue
        if not isinstance(body, dict):
            raise ConfigError(f"config file {path}: {section} must be a mapping")
        for key in body:
            if key not in _SECTIONS[section]:
                known = ", ".join(_SECTIONS[section])
                raise ConfigError(
                    f"config file {path}: unknown key {section}.{key} (known: {known})"
                )
        sections[section] = dict(body)
    return sections


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit():
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        value = int(value)
    if not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def _duration(name: str, value: Any) -> int:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a duration such as 30s, 5m or 1h, got {value!r}")
    try:
        return parse_duration_ms(value.strip())
    except ValueError as exc:
        raise ConfigError(f"{name} must be a duration such as 30s, 5m or 1h: {exc}") from exc


def _size(name: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a size such as 1GB, got {value!r}")
    try:
        size = parse_size_bytes(value)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from exc
    if size <= 0:
        raise ConfigError(f"{name} must be positive, got {value!r}")
    return size


def _path(name: str, value: Any, base: Path | None) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name} must be a non-empty path, got {value!r}")
    path = Path(value).expanduser()
    # Paths in the file are relative to the file's folder, like docker-compose and git do;
    # paths from the environment are relative to the working directory.
    if base is not None and not path.is_absolute():
        path = base / path
    return path


def _path_list(name: str, value: Any, base: Path | None) -> list[Path]:
    if isinstance(value, str):
        items: list[Any] = [part for part in value.split(os.pathsep) if part]
    elif isinstance(value, list):
        items = value
    else:
        raise ConfigError(f"{name} must be a list of folders, got {value!r}")
    return [_path(name, item, base) for item in items]


def load_config(
    config_path: Path | None,
    env: Mapping[str, str],
    cli_db: Path | None = None,
) -> EngineConfig:
    """Resolve the engine configuration.

    Args:
        config_path: the YAML config file to read, or None for none.
        env: the environment (``os.environ``); ``AUTOKESTRA_*`` variables win over the file.
        cli_db: the ``--db`` option; wins over everything for the database path.

    Returns:
        The resolved, validated :class:`EngineConfig`.

    Raises:
        ConfigError: unreadable file, unknown key or bad value (one line saying which).
    """
    sections = _read_file(config_path) if config_path is not None else {}
    base = config_path.parent if config_path is not None else None

    def pick(section: str, key: str) -> tuple[str, Any, Path | None] | None:
        """(name for messages, raw value, base folder for relative paths) or None."""
        for var, target in ENV_VARS.items():
            if target == (section, key) and env.get(var, "") != "":
                return var, env[var], None
        if key in sections.get(section, {}) and sections[section][key] is not None:
            return f"{section}.{key}", sections[section][key], base
        return None

    config = EngineConfig(config_path=config_path)
    values: dict[str, Any] = {}
    if cli_db is not None:
        values["db_path"] = cli_db
    elif (found := pick("storage", "path")) is not None:
        values["db_path"] = _path(found[0], found[1], found[2])
    if (found := pick("execution", "max_concurrent_tasks")) is not None:
        values["max_concurrent_tasks"] = _positive_int(found[0], found[1])
    if (found := pick("execution", "default_task_timeout")) is not None:
        values["default_task_timeout_ms"] = _duration(found[0], found[1])
    if (found := pick("execution", "shutdown_grace")) is not None:
        values["shutdown_grace_ms"] = _duration(found[0], found[1])
    if (found := pick("execution", "launcher")) is not None:
        values["launcher"] = _launcher(found[0], found[1])
    if (found := pick("logging", "retention_days")) is not None:
        values["retention_days"] = _positive_int(found[0], found[1])
    if (found := pick("logging", "buffer_max_entries")) is not None:
        values["buffer_max_entries"] = _positive_int(found[0], found[1])
    if (found := pick("logging", "buffer_max_age")) is not None:
        values["buffer_max_age_ms"] = _duration(found[0], found[1])
    if (found := pick("logging", "table_size_warning")) is not None:
        values["table_size_warning_bytes"] = _size(found[0], found[1])
    values.update(_guard_settings(pick))
    plugin_paths = _plugin_paths(env, sections, base)
    values["plugin_paths"] = plugin_paths
    if (found := pick("secrets", "file")) is not None:
        values["secrets_file"] = _path(found[0], found[1], found[2])
    values["telemetry_otlp"] = _telemetry_otlp(sections)
    return EngineConfig(**{**config.__dict__, **values})


def _telemetry_otlp(sections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``telemetry.otlp`` as a mapping (empty when absent); its keys are obs-telemetry's."""
    value = sections.get("telemetry", {}).get("otlp")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError("telemetry.otlp must be a mapping (endpoint, headers, service_name)")
    return dict(value)


def _guard_settings(
    pick: Callable[[str, str], tuple[str, Any, Path | None] | None],
) -> dict[str, Any]:
    """``limits.*`` and ``logging.mask_token_shapes``: what protects against bad input."""
    values: dict[str, Any] = {}
    if (found := pick("logging", "mask_token_shapes")) is not None:
        values["mask_token_shapes"] = _bool(found[0], found[1])
    if (found := pick("limits", "workflow_bytes")) is not None:
        values["workflow_bytes"] = _size(found[0], found[1])
    if (found := pick("limits", "max_tasks")) is not None:
        values["max_tasks"] = _positive_int(found[0], found[1])
    return values


def _plugin_paths(
    env: Mapping[str, str], sections: dict[str, dict[str, Any]], base: Path | None
) -> list[Path]:
    """Plugin folders in search order: AUTOKESTRA_PLUGIN_PATH, the file's list, ./plugins.

    Unlike scalar keys, the lists add up (the environment's folders come first and so win
    a name clash); ``./plugins`` is always searched last, as DESIGN.md promises.
    """
    paths: list[Path] = []
    if env.get("AUTOKESTRA_PLUGIN_PATH", "") != "":
        paths += _path_list("AUTOKESTRA_PLUGIN_PATH", env["AUTOKESTRA_PLUGIN_PATH"], None)
    file_value = sections.get("plugins", {}).get("path")
    if file_value is not None:
        paths += _path_list("plugins.path", file_value, base)
    paths.append(DEFAULT_PLUGIN_DIR)
    unique: list[Path] = []
    for path in paths:
        if path not in unique:
            unique.append(path)
    return unique
