"""CLI errors: the only place domain exceptions become exit codes and one-line messages.

Domain packages raise their own exceptions (``ExecutionNotFound``, ``StorageError``); a
command wraps its body in :func:`domain_errors` and the user sees ``Error: <message>`` on
stderr with exit code 1, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from autokestra_obs_schema import StorageError

#: Exit code of a run interrupted by Ctrl+C (128 + SIGINT).
EXIT_INTERRUPTED = 130


class CliError(click.ClickException):
    """An error the user can fix: printed as ``Error: <message>``, exit code 1."""

    exit_code = 1


#: Domain exception types that map to a plain ``Error: <message>`` with exit code 1.
#: Packages register theirs with :func:`register_domain_error` when the CLI imports them.
_DOMAIN_ERRORS: list[type[Exception]] = [StorageError]


def register_domain_error(kind: type[Exception]) -> None:
    """Declare an exception type whose message is fit to show the user as is."""
    if kind not in _DOMAIN_ERRORS:
        _DOMAIN_ERRORS.append(kind)


@contextmanager
def domain_errors() -> Iterator[None]:
    """Turn registered domain exceptions raised in the block into :class:`CliError`."""
    try:
        yield
    except tuple(_DOMAIN_ERRORS) as exc:
        raise CliError(str(exc)) from exc
