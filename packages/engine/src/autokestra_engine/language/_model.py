"""The records a workflow definition is made of: frozen, typed, shared by every engine part.

The workflow parser (:mod:`._workflow_parser`) builds them from YAML; the scheduler and the
executor only read them. Templates stay unresolved here: ``TaskSpec.inputs`` holds the raw
YAML values.

    policy = RetryPolicy(max=2, backoff="exponential", delay_ms=1000, max_delay_ms=5000)
    policy.delay_for(1)  # 1000
    policy.delay_for(3)  # 4000
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

BackoffType = Literal["fixed", "exponential"]
TriggerType = Literal["manual", "cron", "webhook"]
#: When a task runs, given how its ``needs`` ended (Airflow's trigger rules, GitHub's
#: ``always()``): ``all_success`` (default) needs every upstream SUCCESS; ``none_failed``
#: also accepts SKIPPED ones; ``any_failed`` runs when an upstream FAILED or was CANCELLED
#: (and is SKIPPED otherwise); ``always`` runs once every upstream ended, whatever the
#: outcome, even after the execution was cancelled or timed out (cleanup).
RunIf = Literal["all_success", "none_failed", "any_failed", "always"]
RUN_IF_RULES: tuple[RunIf, ...] = ("all_success", "none_failed", "any_failed", "always")

#: Value types an input (workflow parameter or plugin action input) may declare.
INPUT_TYPES = ("string", "integer", "number", "boolean", "array", "object", "duration", "any")


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failed task attempt is retried and how long to wait in between.

    Attributes:
        max: retries after the first attempt (``max=2`` means at most 3 attempts).
        backoff: ``fixed`` waits ``delay_ms`` every time; ``exponential`` doubles it per retry.
        delay_ms: the first (or every, when fixed) wait.
        max_delay_ms: no wait is longer than this.
    """

    max: int = 0
    backoff: BackoffType = "fixed"
    delay_ms: int = 1000
    max_delay_ms: int = 60_000

    def delay_for(self, attempt_that_failed: int) -> int:
        """The wait in milliseconds before retrying after attempt ``attempt_that_failed`` (1-based).

        Args:
            attempt_that_failed: number of the attempt that just failed, starting at 1.

        Returns:
            ``delay_ms`` for fixed backoff, ``delay_ms * 2**(n-1)`` for exponential backoff,
            never more than ``max_delay_ms``.
        """
        if self.backoff == "fixed":
            return min(self.delay_ms, self.max_delay_ms)
        exponent = max(0, attempt_that_failed - 1)
        # Cap the exponent first: 2**10_000 is a big int, not an error, but pointless work.
        if exponent > 62:
            return self.max_delay_ms
        return min(self.delay_ms * (1 << exponent), self.max_delay_ms)


@dataclass(frozen=True)
class Trigger:
    """What starts a workflow: ``manual`` (default), ``cron`` with a schedule, or ``webhook``.

    Attributes:
        type: the trigger type.
        schedule: the cron expression (``cron`` only).
        secret: the name of the secret that signs webhook requests (``webhook`` only): the
            file says ``secret: "{{ secrets.NAME }}"``, never the value.
    """

    type: TriggerType = "manual"
    schedule: str | None = None
    secret: str | None = None


@dataclass(frozen=True)
class InputSpec:
    """A declared workflow parameter (``inputs:`` at the top of a workflow file)."""

    type: str = "string"
    default: Any = None
    required: bool = False
    description: str = ""

    @property
    def has_default(self) -> bool:
        """True when the workflow file gave a default (``None`` means no default)."""
        return self.default is not None


@dataclass(frozen=True)
class TaskSpec:
    """One task of a workflow, exactly as declared (templates unresolved).

    Attributes:
        id: task id, ``^[A-Za-z0-9_-]{1,64}$``.
        type: ``namespace/plugin.action``.
        needs: ids of the tasks that must succeed first, in declaration order.
        inputs: raw input values; strings may hold ``{{ ... }}`` templates.
        retry: the retry policy (no retries by default).
        timeout_ms: the task's own timeout, or None (then the action's, then the config's).
        position: index of the task in the workflow's ``tasks`` list.
        description: free text.
        secret_inputs: names of the inputs its action declares ``secret: true`` (set by the
            loader; a value given to one in the file or by an input is a secret from the start).
        condition: the ``if:`` expression, or None (see :mod:`._conditions`).
        run_if: the trigger rule: which upstream outcomes let it run.
        allow_failure: its failure does not fail the execution (nor its dependants' rules).
        for_each: a list, or a whole template giving one at run time: the task runs once per
            item, each iteration its own task run ``<id>[<index>]``; None for a plain task.
        concurrency: at most this many iterations run at once (None: the pool's limit).
        iteration: set on the task of one iteration (never in a workflow as declared).
    """

    id: str
    type: str
    needs: tuple[str, ...] = ()
    inputs: dict[str, Any] = field(default_factory=dict)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout_ms: int | None = None
    position: int = 0
    description: str = ""
    secret_inputs: frozenset[str] = frozenset()
    condition: str | None = None
    run_if: RunIf = "all_success"
    allow_failure: bool = False
    for_each: Any = None
    concurrency: int | None = None
    iteration: Iteration | None = None


@dataclass(frozen=True)
class Iteration:
    """One iteration of a ``for_each`` task: what ``{{ item }}`` and ``{{ index }}`` read.

    Attributes:
        parent: the ``for_each`` task's id.
        index: 0-based position of the item in the list.
        item: the item.
    """

    parent: str
    index: int
    item: Any

    @property
    def task_id(self) -> str:
        """The iteration's task run id: ``parent[index]``."""
        return iteration_id(self.parent, self.index)


def iteration_id(parent: str, index: int) -> str:
    """The task run id of iteration ``index`` of task ``parent``: ``fetch[3]``."""
    return f"{parent}[{index}]"


@dataclass(frozen=True)
class Workflow:
    """A validated workflow definition.

    Attributes:
        id: workflow id, ``^[A-Za-z0-9_-]{1,64}$``.
        description: free text.
        enabled: whether triggers (cron) fire it; ``run`` works either way.
        trigger: how it starts.
        inputs: declared parameters by name.
        timeout_ms: the whole execution's time limit, or None.
        tasks: tasks in declaration order.
        source: the YAML text as loaded (stored with each execution).
        source_path: the file it was loaded from, when there was one.
        on_failure: the failure handler: tasks run once when the execution fails (their
            ``needs`` name each other only), after every task of ``tasks`` ended.
    """

    id: str
    description: str
    enabled: bool
    trigger: Trigger
    inputs: dict[str, InputSpec]
    timeout_ms: int | None
    tasks: tuple[TaskSpec, ...]
    source: str
    source_path: str | None = None
    on_failure: tuple[TaskSpec, ...] = ()

    @property
    def all_tasks(self) -> tuple[TaskSpec, ...]:
        """``tasks`` then the failure handler's tasks: every task run an execution has."""
        return self.tasks + self.on_failure

    def task(self, task_id: str) -> TaskSpec:
        """The task with this id.

        Raises:
            KeyError: no task has this id.
        """
        for task in self.all_tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)


@dataclass(frozen=True)
class InputDecl:
    """An input a plugin action declares in its ``plugin.yaml``.

    Attributes:
        type: one of :data:`INPUT_TYPES`.
        required: a task must give it (unless there is a default).
        default: used when a task does not give it (None = no default).
        secret: the value is masked in storage and added to the execution's redactor.
        description: free text.
        enum: when set, the allowed values.
    """

    type: str = "string"
    required: bool = False
    default: Any = None
    secret: bool = False
    description: str = ""
    enum: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class ActionSpec:
    """One runnable action of a plugin, with its command ready to spawn.

    Attributes:
        namespace: plugin namespace (``core`` for built-ins).
        plugin: plugin name.
        action: action name.
        version: plugin version string.
        plugin_dir: the plugin folder; the working directory of the action's process.
        command: argv, with ``{python}`` already replaced and relative program paths made
            absolute against ``plugin_dir``.
        inputs: declared inputs by name.
        timeout_ms: default timeout for tasks of this action, or None.
        description: free text.
        outputs: declared output names with their type (informative).
        builtin: True for the plugins shipped with the engine.
    """

    namespace: str
    plugin: str
    action: str
    version: str
    plugin_dir: Path
    command: tuple[str, ...]
    inputs: dict[str, InputDecl] = field(default_factory=dict)
    timeout_ms: int | None = None
    description: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    builtin: bool = False

    @property
    def type(self) -> str:
        """The task type naming this action: ``namespace/plugin.action``."""
        return f"{self.namespace}/{self.plugin}.{self.action}"

    @property
    def source(self) -> str:
        """The log ``source`` of lines this action prints: ``plugin:<type>``."""
        return f"plugin:{self.type}"
