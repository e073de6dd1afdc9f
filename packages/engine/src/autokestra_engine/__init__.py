"""autokestra_engine: YAML workflows, DAG scheduler, worker pool and plugin processes.

from autokestra_engine import PluginRegistry, load_workflow

registry = PluginRegistry.discover([])
workflow = load_workflow(Path("examples/workflows/hello.yaml"), registry)
"""

from ._config import DEFAULT_DB_PATH, EngineConfig, LauncherMode, load_config, parse_size_bytes
from ._dsl import (
    SecretInputValues,
    check_secrets,
    load_workflow,
    parse_workflow,
    secret_input_values,
    secret_references,
)
from ._engine import Engine, referenced_secrets, request_cancel
from ._executor import AttemptRequest, AttemptResult, PluginExecutor
from ._ids import new_engine_id, new_execution_id, uuid7
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
from ._persistence import (
    CancelOutcome,
    EngineOwner,
    ExecutionAlreadyFinished,
    ExecutionNotFound,
    ExecutionOwned,
    ExecutionRow,
    ExecutionStore,
    load_execution,
)
from ._plugins import PluginInfo, PluginRegistry, load_manifest
from ._problems import (
    ConfigError,
    PluginError,
    Problem,
    SecretNotQueueable,
    SecretsError,
    TemplateError,
    UnknownAction,
    WorkflowInvalid,
)
from ._recovery import LostExecution, recover_lost_executions
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
from ._scheduler import CANCEL_POLL_S, Dag
from ._secrets import SecretStore
from ._server import Maintenance, Server, ServerTimings
from ._states import (
    TERMINAL_STATES,
    TRANSITIONS,
    IllegalTransition,
    Reason,
    State,
    check_transition,
)
from ._templates import (
    SECRET_MASK,
    ResolvedInputs,
    TemplateContext,
    resolve_task_inputs,
)
from ._worker import CancelToken, EngineEvent, WorkerPool

__all__ = [
    "ActionSpec",
    "AttemptRequest",
    "AttemptResult",
    "CANCEL_POLL_S",
    "CancelOutcome",
    "CancelToken",
    "ConfigError",
    "DEFAULT_DB_PATH",
    "Dag",
    "Engine",
    "EngineConfig",
    "EngineEvent",
    "EngineOwner",
    "ExecutionAlreadyFinished",
    "ExecutionNotFound",
    "ExecutionOwned",
    "ExecutionRow",
    "ExecutionStore",
    "INPUT_TYPES",
    "IllegalTransition",
    "InputDecl",
    "InputSpec",
    "LauncherMode",
    "LostExecution",
    "Maintenance",
    "PluginError",
    "PluginExecutor",
    "PluginInfo",
    "PluginRegistry",
    "Problem",
    "Reason",
    "RegisteredWorkflow",
    "RegistryError",
    "ResolvedInputs",
    "RetryPolicy",
    "SECRET_MASK",
    "SecretInputValues",
    "SecretNotQueueable",
    "SecretStore",
    "SecretsError",
    "Server",
    "ServerTimings",
    "State",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "TaskSpec",
    "TemplateContext",
    "TemplateError",
    "Trigger",
    "UnknownAction",
    "WorkerPool",
    "Workflow",
    "WorkflowInvalid",
    "WorkflowNotRegistered",
    "WorkflowRegistry",
    "bind_inputs",
    "check_secrets",
    "check_transition",
    "describe_trigger",
    "get_workflow",
    "list_workflows",
    "load_config",
    "load_execution",
    "load_manifest",
    "load_workflow",
    "new_engine_id",
    "new_execution_id",
    "next_fire_ms",
    "parse_size_bytes",
    "parse_workflow",
    "recover_lost_executions",
    "referenced_secrets",
    "request_cancel",
    "resolve_task_inputs",
    "secret_input_values",
    "secret_references",
    "uuid7",
    "validate_schedule",
]
