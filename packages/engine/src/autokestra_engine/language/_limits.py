"""Limits on workflow files: refused fast, before the expensive parts, naming the limit.

A workflow file is untrusted input. Each refusal below happens before the step that would be
slow or unbounded (DESIGN.md §6.9): the file type and size before reading, the nesting depth
while composing (PyYAML recurses once per level), the task count before validating tasks.
Strings that cannot be stored as UTF-8 (a lone surrogate from a ``"\\ud800"`` escape) are
found here too, with their path, so ``validate`` refuses what ``run`` could not store.

    limits = WorkflowLimits(workflow_bytes=1 << 20, max_tasks=5000)
    text = read_workflow_text(Path("flow.yaml"), limits)   # raises WorkflowInvalid
    problems = unencodable_strings(document)               # [Problem("tasks[0].id", ...)]
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._problems import Problem, WorkflowInvalid

#: Default ``limits.workflow_bytes``: 1 MiB holds thousands of tasks.
DEFAULT_WORKFLOW_BYTES = 1024 * 1024
#: Default ``limits.max_tasks``.
DEFAULT_MAX_TASKS = 5000
#: Deepest YAML nesting accepted (a real workflow is under 10 levels deep).
MAX_NESTING = 64


@dataclass(frozen=True, slots=True)
class WorkflowLimits:
    """The ``limits:`` of the configuration that apply to workflow files."""

    workflow_bytes: int = DEFAULT_WORKFLOW_BYTES
    max_tasks: int = DEFAULT_MAX_TASKS


#: The limits when the configuration sets none.
DEFAULT_LIMITS = WorkflowLimits()


def read_workflow_text(path: Path, limits: WorkflowLimits) -> str:
    """Read a workflow file, refusing what is not a regular file or is too big.

    The file is opened non-blocking (a FIFO must not block the open) and checked with
    ``fstat`` on the open descriptor, so what is checked is what is read; at most one byte
    more than the limit is ever read (a file growing meanwhile is refused too).

    Raises:
        WorkflowInvalid: not a regular file, over ``limits.workflow_bytes``, unreadable or
            not UTF-8.
    """
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError as exc:
        raise _refused(name, "not a regular file") from exc
    except OSError as exc:
        raise _unreadable(name, exc) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _refused(name, "not a regular file")
        if info.st_size > limits.workflow_bytes:
            raise _too_big(name, info.st_size, limits)
        data = _read_at_most(fd, limits.workflow_bytes + 1)
    except OSError as exc:
        raise _unreadable(name, exc) from exc
    finally:
        os.close(fd)
    if len(data) > limits.workflow_bytes:
        raise _too_big(name, len(data), limits)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WorkflowInvalid(
            [Problem("file", f"not UTF-8 text: {exc.reason}")], filename=name
        ) from exc


def check_task_count(count: int, limits: WorkflowLimits, filename: str | None) -> None:
    """Refuse more than ``limits.max_tasks`` tasks before any task is validated.

    Raises:
        WorkflowInvalid: ``tasks: <n> tasks; the limit is <m> (limits.max_tasks)``.
    """
    if count > limits.max_tasks:
        problem = Problem(
            "tasks", f"{count} tasks; the limit is {limits.max_tasks} (limits.max_tasks)"
        )
        raise WorkflowInvalid([problem], filename=filename)


def too_deep(filename: str | None) -> WorkflowInvalid:
    """The refusal of a document nested deeper than :data:`MAX_NESTING` levels."""
    return WorkflowInvalid(
        [Problem("", f"nested deeper than {MAX_NESTING} levels")], filename=filename
    )


def unencodable_strings(document: Any) -> list[Problem]:
    """A problem for every key or string value that cannot be encoded as UTF-8, with its path."""
    return [
        Problem(
            path or "workflow", "contains a character that is not valid Unicode (a lone surrogate)"
        )
        for path in _unencodable_paths(document, "")
    ]


def _unencodable_paths(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, str):
        if not _encodable(value):
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            label = str(key) if _encodable(str(key)) else repr(key)
            child = f"{path}.{label}" if path else label
            if isinstance(key, str) and not _encodable(key):
                yield child
            yield from _unencodable_paths(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unencodable_paths(item, f"{path}[{index}]")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _refused(filename: str, message: str) -> WorkflowInvalid:
    return WorkflowInvalid([Problem("", message)], filename=filename)


def _unreadable(filename: str, exc: OSError) -> WorkflowInvalid:
    return WorkflowInvalid(
        [Problem("file", f"cannot read: {exc.strerror or exc}")], filename=filename
    )


def _too_big(filename: str, size: int, limits: WorkflowLimits) -> WorkflowInvalid:
    return _refused(
        filename,
        f"the file is {size} bytes; the limit is {limits.workflow_bytes} (limits.workflow_bytes)",
    )
