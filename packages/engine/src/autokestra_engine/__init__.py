"""autokestra_engine: YAML workflows, DAG scheduler, worker pool and plugin processes.

from autokestra_engine import PluginRegistry, load_workflow

registry = PluginRegistry.discover([])
workflow = load_workflow(Path("examples/workflows/hello.yaml"), registry)
"""

from ._config import DEFAULT_DB_PATH, EngineConfig, load_config, parse_size_bytes
from ._dsl import check_secrets, load_workflow, parse_workflow, secret_references
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
from ._registry import (
    RegisteredWorkflow,
    RegistryError,
    WorkflowNotRegistered,
    WorkflowRegistry,
    describe_trigger,
    get_workflow,
    list_workflows,
    next_fire_ms,
    validate_schedule,
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
    "RegisteredWorkflow",
    "RegistryError",
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
    "WorkflowNotRegistered",
    "WorkflowRegistry",
    "bind_inputs",
    "check_secrets",
    "describe_trigger",
    "get_workflow",
    "list_workflows",
    "load_config",
    "load_manifest",
    "load_workflow",
    "next_fire_ms",
    "parse_size_bytes",
    "parse_workflow",
    "resolve_task_inputs",
    "secret_references",
    "validate_schedule",
]
