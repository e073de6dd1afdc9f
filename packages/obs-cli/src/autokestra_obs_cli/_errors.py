"""CLI errors: the only place domain exceptions become exit codes and one-line messages.

Every domain package raises subclasses of ``autokestra_obs_schema.AutokestraError`` (whose
message is a one-line user-facing text); a command wraps its body in :func:`domain_errors` and
the user sees ``Error: <message>`` on stderr with exit code 1, never a traceback.

    with domain_errors():
        report = purge(app.writer(), cutoff)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from autokestra_obs_schema import AutokestraError

#: Exit code of a run interrupted by Ctrl+C (128 + SIGINT).
EXIT_INTERRUPTED = 130


class CliError(click.ClickException):
    """An error the user can fix: printed as ``Error: <message>``, exit code 1."""

    exit_code = 1


@contextmanager
def domain_errors() -> Iterator[None]:
    """Turn any domain error (``AutokestraError``) raised in the block into :class:`CliError`."""
    try:
        yield
    except AutokestraError as exc:
        raise CliError(str(exc)) from exc
