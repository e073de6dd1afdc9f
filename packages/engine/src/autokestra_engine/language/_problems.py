"""Errors of the definition side: invalid workflows, plugins, templates, unqueueable secrets.

Every message is one line fit for ``Error: <message>``; :class:`WorkflowInvalid` carries every
problem found, each with the path of the offending value.

    try:
        load_workflow(path, registry)
    except WorkflowInvalid as exc:
        for problem in exc.problems:
            print(f"{path}: {problem}")   # hello.yaml: tasks[2].needs[0]: unknown task 'fetch'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autokestra_obs_schema import AutokestraError


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a definition: where (``tasks[2].needs[0]``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        # A problem of the whole file (too big, not a regular file) has no path.
        return f"{self.path}: {self.message}" if self.path else self.message


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class WorkflowInvalid(AutokestraError):
    """A workflow file that cannot run; ``problems`` lists all of what is wrong, in file order."""

    def __init__(self, problems: Sequence[Problem], *, filename: str | None = None) -> None:
        # A problem may quote a key or value holding a lone surrogate: shown as `\udfff`, so
        # every message can be printed and stored as UTF-8.
        self.problems: list[Problem] = [
            Problem(_printable(problem.path), _printable(problem.message)) for problem in problems
        ]
        self.filename = filename
        first = str(self.problems[0]) if self.problems else "invalid workflow"
        more = len(self.problems) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
        where = f"{filename}: " if filename else ""
        super().__init__(f"Invalid workflow {where}{first}{suffix}")


class PluginError(AutokestraError):
    """A plugin manifest (``plugin.yaml``) that cannot be loaded."""


class UnknownAction(AutokestraError, LookupError):
    """A task type that names no discovered plugin action."""

    def __str__(self) -> str:
        # LookupError/KeyError would wrap the message in quotes; show it as written.
        return str(self.args[0]) if self.args else "unknown action"


class TemplateError(AutokestraError):
    """A template reference that cannot be resolved when a task is about to run."""


class SecretNotQueueable(AutokestraError):
    """A run that cannot be queued: its workflow gives a secret input a value in clear.

    A queued execution is run later from its stored source and inputs, where such a value
    is masked; the message names every offending path and the fix.
    """
