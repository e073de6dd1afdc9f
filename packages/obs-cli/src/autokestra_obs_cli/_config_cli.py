"""The engine configuration as the CLI sees it: ``--config``, ``--db``, ``--plugin-path``.

Precedence for the database path: ``--db`` > ``AUTOKESTRA_DB`` > ``storage.path`` in the
config file > ``./.autokestra/autokestra.db``. The root group resolves the first two itself
and asks :func:`configured_db_path` for the third. ``--plugin-path`` folders are searched
before the configured ones.

    config = cli_engine_config(app, plugin_paths)
    registry = PluginRegistry.discover(config.plugin_paths)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import click

from autokestra_engine import (
    ConfigError,
    EngineConfig,
    PluginRegistry,
    SecretsError,
    WorkflowInvalid,
    load_config,
)
from autokestra_obs_collector import LogCollector
from autokestra_obs_schema import Writer

from ._context import AppContext
from ._errors import CliError, register_domain_error

for _kind in (ConfigError, SecretsError, WorkflowInvalid):
    register_domain_error(_kind)


def configured_db_path(config_path: Path) -> Path | None:
    """``storage.path`` of the config file (relative to the file's folder), or None.

    Called by the root group only when neither ``--db`` nor ``AUTOKESTRA_DB`` was given.

    Raises:
        CliError: the config file is unreadable or invalid.
    """
    try:
        # No environment: AUTOKESTRA_DB is known to be unset here, and a bad engine variable
        # (say AUTOKESTRA_MAX_CONCURRENT_TASKS) must not break commands that only read logs.
        config = load_config(config_path, {})
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    default = EngineConfig().db_path
    return None if config.db_path == default else config.db_path


def cli_engine_config(app: AppContext, plugin_paths: Sequence[Path] = ()) -> EngineConfig:
    """The engine configuration of this invocation.

    Args:
        app: the root group's context (config file and the resolved database path).
        plugin_paths: ``--plugin-path`` folders, searched before the configured ones.

    Raises:
        CliError: the config file or an ``AUTOKESTRA_*`` variable is invalid.
    """
    try:
        config = load_config(app.config_path, os.environ, cli_db=app.db_path)
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    if not plugin_paths:
        return config
    searched = [*plugin_paths, *(p for p in config.plugin_paths if p not in plugin_paths)]
    return dataclasses.replace(config, plugin_paths=searched)


def cli_registry(config: EngineConfig) -> PluginRegistry:
    """The built-in plugins plus every plugin found on ``config.plugin_paths``."""
    return PluginRegistry.discover(config.plugin_paths)


_F = TypeVar("_F", bound=Callable[..., object])


def plugin_path_option(command: _F) -> _F:
    """The ``--plugin-path DIR`` option (repeatable) shared by run, validate, apply, server."""
    return click.option(
        "--plugin-path",
        "plugin_paths",
        multiple=True,
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        help="Folder containing plugin folders (repeatable; searched first).",
    )(command)


def cli_collector(config: EngineConfig, writer: Writer) -> LogCollector:
    """The process's log collector, with the configured buffer size and age."""
    return LogCollector(
        writer,
        max_batch=config.buffer_max_entries,
        max_age_s=config.buffer_max_age_ms / 1000,
    )
