"""autokestra_engine: YAML workflows, DAG scheduler, worker pool and plugin processes.

from autokestra_engine import PluginRegistry, load_workflow

registry = PluginRegistry.discover([])
workflow = load_workflow(Path("examples/workflows/hello.yaml"), registry)
"""

from ._model import (
    INPUT_TYPES,
    ActionSpec,
    InputDecl,
    InputSpec,
    RetryPolicy,
    TaskSpec,
    Trigger,
    Workflow,
)
from ._problems import (
    ConfigError,
    PluginError,
    Problem,
    SecretsError,
    TemplateError,
    UnknownAction,
    WorkflowInvalid,
)

__all__ = [
    "ActionSpec",
    "ConfigError",
    "INPUT_TYPES",
    "InputDecl",
    "InputSpec",
    "PluginError",
    "Problem",
    "RetryPolicy",
    "SecretsError",
    "TaskSpec",
    "TemplateError",
    "Trigger",
    "UnknownAction",
    "Workflow",
    "WorkflowInvalid",
]
