"""autokestra_engine: YAML workflows, DAG scheduler, worker pool and plugin processes.

from autokestra_engine import PluginRegistry, load_workflow

registry = PluginRegistry.discover([])
workflow = load_workflow(Path("examples/workflows/hello.yaml"), registry)
"""

from ._config import DEFAULT_DB_PATH, EngineConfig, load_config, parse_size_bytes
from ._executor import AttemptRequest, AttemptResult, PluginExecutor
from ._inputs import bind_inputs
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
from ._plugins import PluginInfo, PluginRegistry, load_manifest
from ._problems import (
    ConfigError,
    PluginError,
    Problem,
    SecretsError,
    TemplateError,
    UnknownAction,
    WorkflowInvalid,
)
from ._secrets import SecretStore
from ._templates import (
    SECRET_MASK,
    ResolvedInputs,
    TemplateContext,
    resolve_task_inputs,
)

__all__ = [
    "ActionSpec",
    "AttemptRequest",
    "AttemptResult",
    "ConfigError",
    "DEFAULT_DB_PATH",
    "EngineConfig",
    "INPUT_TYPES",
    "InputDecl",
    "InputSpec",
    "PluginError",
    "PluginExecutor",
    "PluginInfo",
    "PluginRegistry",
    "Problem",
    "ResolvedInputs",
    "RetryPolicy",
    "SECRET_MASK",
    "SecretStore",
    "SecretsError",
    "TaskSpec",
    "TemplateContext",
    "TemplateError",
    "Trigger",
    "UnknownAction",
    "Workflow",
    "WorkflowInvalid",
    "bind_inputs",
    "load_config",
    "load_manifest",
    "parse_size_bytes",
    "resolve_task_inputs",
]
