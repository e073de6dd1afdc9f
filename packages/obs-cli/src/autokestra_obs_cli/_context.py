"""The application context every command receives: paths, configuration, consoles, connections.

The root group builds one :class:`AppContext` into ``ctx.obj``; commands take it with
``@pass_app``. It is the one place the configuration is resolved: the database path
(``--db`` > ``AUTOKESTRA_DB`` > the config file's ``storage.path`` > the default) and the
engine configuration, the config file parsed at most once per command and only when a command
needs it (``execution logs --db X`` never imports the engine or YAML). Connections open on
first use and close when the command ends.

    @click.command()
    @pass_app
    def show(app: AppContext) -> None:
        conn = app.reader()
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import apsw
import click

from autokestra_obs_schema import DEFAULT_DB_PATH, Writer, open_reader, open_writer

from ._errors import CliError, domain_errors

if TYPE_CHECKING:
    from rich.console import Console

    from autokestra_engine import EngineConfig

#: The config file read when ``--config`` is not given, if it exists.
DEFAULT_CONFIG_PATH = Path("autokestra.yaml")


def color_wanted(no_color_flag: bool) -> bool:
    """Colour only on a TTY, never with ``--no-color`` or a non-empty ``NO_COLOR``.

    An empty ``NO_COLOR`` does not count (no-color.org, DESIGN.md §6.12): ``NO_COLOR=`` is how
    a wrapper script clears it.
    """
    if no_color_flag or os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def make_console(*, stderr: bool, color: bool) -> Console:
    """A rich console that never interprets markup or emoji in what it prints.

    Untrusted text (plugin output) must reach the terminal only as escaped ``Text``; turning
    markup off by default means a stray ``[bold]`` in a message can never restyle output.
    rich is imported here, on first use: a command that writes plain text never loads it.
    """
    from rich.console import Console

    return Console(
        stderr=stderr,
        color_system="auto" if color else None,
        no_color=not color,
        markup=False,
        emoji=False,
        highlight=False,
        soft_wrap=True,
    )


@dataclass(frozen=True)
class AppContext:
    """What the global options resolved to, shared by every command of one invocation.

    ``db_option`` is ``--db`` / ``AUTOKESTRA_DB`` as given; the effective :attr:`db_path` is
    resolved on first use, so a broken config file fails the command that needs it, not
    ``--help``. The rich consoles :attr:`out` and :attr:`err` are made on first use too.
    """

    db_option: Path | None
    config_path: Path | None
    color: bool
    debug: bool
    _open: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    @property
    def out(self) -> Console:
        """The rich console of stdout (coloured when :attr:`color`)."""
        console = self._open.get("out")
        if console is None:
            console = self._open["out"] = make_console(stderr=False, color=self.color)
        return console  # type: ignore[return-value]  # only make_console stores it

    @property
    def err(self) -> Console:
        """The rich console of stderr (coloured when :attr:`color` and stderr is a TTY)."""
        console = self._open.get("err")
        if console is None:
            color = self.color and sys.stderr.isatty()
            console = self._open["err"] = make_console(stderr=True, color=color)
        return console  # type: ignore[return-value]  # only make_console stores it

    @property
    def db_path(self) -> Path:
        """``--db`` > ``AUTOKESTRA_DB`` > the config file's ``storage.path`` > the default.

        Raises:
            CliError: the config file had to be read and is invalid.
        """
        if self.db_option is not None:
            return self.db_option
        if self.config_path is None:
            return DEFAULT_DB_PATH
        return self.engine_config().db_path

    def engine_config(self) -> EngineConfig:
        """The engine configuration: defaults < config file < ``AUTOKESTRA_*`` < ``--db``.

        Resolved once per command by the engine's ``load_config`` (the engine is imported
        here, on first use, not at start-up).

        Raises:
            CliError: the config file or an ``AUTOKESTRA_*`` variable is invalid.
        """
        from autokestra_engine import ConfigError, EngineConfig, load_config

        config = self._open.get("config")
        if isinstance(config, EngineConfig):
            return config
        try:
            config = load_config(self.config_path, os.environ, cli_db=self.db_option)
        except ConfigError as exc:
            raise CliError(str(exc)) from exc
        self._open["config"] = config
        return config

    def reader(self) -> apsw.Connection:
        """A read-only connection, opened once and closed when the command ends."""
        conn = self._open.get("reader")
        if isinstance(conn, apsw.Connection):
            return conn
        with domain_errors():
            opened = open_reader(self.db_path)
        self._open["reader"] = opened
        click.get_current_context().call_on_close(opened.close)
        return opened

    def writer(self) -> Writer:
        """The process's one :class:`Writer`, migrated, closed when the command ends."""
        writer = self._open.get("writer")
        if isinstance(writer, Writer):
            return writer
        with domain_errors():
            opened = open_writer(self.db_path)
        self._open["writer"] = opened
        click.get_current_context().call_on_close(opened.close)
        return opened


pass_app = click.make_pass_decorator(AppContext)
