"""What the engine-running commands share: the configuration with ``--plugin-path``, plugins.

``run``, ``validate``, ``apply``, ``server start`` and ``execution cancel`` build the engine's
parts from the configuration :meth:`AppContext.engine_config` resolved; ``--plugin-path``
folders are searched before the configured ones.

    config = cli_engine_config(app, plugin_paths)
    registry = cli_registry(config)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import click

from autokestra_engine import EngineConfig, PluginRegistry

from ._context import AppContext


def cli_engine_config(app: AppContext, plugin_paths: Sequence[Path] = ()) -> EngineConfig:
    """The engine configuration of this invocation, ``--plugin-path`` folders first.

    Args:
        app: the root group's context (resolves the configuration once).
        plugin_paths: ``--plugin-path`` folders, searched before the configured ones.

    Raises:
        CliError: the config file or an ``AUTOKESTRA_*`` variable is invalid.
    """
    config = app.engine_config()
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
