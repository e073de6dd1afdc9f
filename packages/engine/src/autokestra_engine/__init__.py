"""autokestra_engine: YAML workflows, DAG scheduler, worker pool and plugin processes.

The package's parts, lowest first (each imports only from those before it):
``_config`` and ``_secret_store`` (what the operator provides), ``language/`` (the workflow
and plugin definitions: model, parser, templates, secret analysis), ``persistence/`` (the
write path: ids, transitions, recorder), ``run/`` (executor, worker, scheduler, engine),
``operations/`` (recovery, workflow registry, server) and ``_runtime`` (the process's parts).

    from autokestra_engine import EngineRuntime, load_config, load_workflow

    with EngineRuntime(load_config(None, os.environ)) as runtime:
        workflow = load_workflow(Path("examples/workflows/hello.yaml"), runtime.registry)
        outcome = runtime.engine.run(runtime.engine.create_execution(workflow, {}))
"""

from autokestra_obs_collector import (
    AttemptEnded,
    AttemptStarted,
    ExecutionEnded,
    ExecutionObserver,
    ExecutionStarted,
    Observers,
    TaskEnded,
    TaskStarted,
)

from ._config import ConfigError, EngineConfig, LauncherMode, load_config, parse_size_bytes
from ._runtime import EngineRuntime, workflow_limits
from ._secret_store import SecretsError, SecretStore
from .language._inputs import bind_inputs
from .language._limits import WorkflowLimits
from .language._model import (
    INPUT_TYPES,
    ActionSpec,
    InputDecl,
    InputSpec,
    RetryPolicy,
    TaskSpec,
    Trigger,
    Workflow,
)
from .language._plugin_registry import PluginInfo, PluginRegistry, load_manifest
from .language._problems import (
    PluginError,
    Problem,
    SecretNotQueueable,
    TemplateError,
    UnknownAction,
    WorkflowInvalid,
)
from .language._secret_analysis import (
    SecretInputValues,
    check_secrets,
    secret_input_values,
    secret_references,
)
from .language._subflows import MAX_SUBFLOW_DEPTH, SUBFLOW_TYPE
from .language._templates import ResolvedInputs, TemplateContext, resolve_task_inputs
from .language._workflow_parser import load_workflow, parse_workflow
from .operations._recovery import LostExecution, recover_lost_executions
from .operations._server_loop import Maintenance, Server, ServerTimings
from .operations._webhook_signature import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signed_headers,
)
from .operations._webhooks import (
    WEBHOOK_MAX_BODY_BYTES,
    WEBHOOK_TOLERANCE_MS,
    WebhookOutcome,
    WebhookReceiver,
    WebhookRequest,
    WebhookResponse,
)
from .operations._workflow_registry import (
    RegisteredWorkflow,
    RegistryError,
    WorkflowNotRegistered,
    WorkflowRegistry,
    check_subflows,
    describe_trigger,
    get_workflow,
    list_workflows,
    next_fire_ms,
    validate_schedule,
)
from .persistence._ids import new_engine_id, new_execution_id, uuid7
from .persistence._recorder import (
    CancelOutcome,
    CannotRecordExecution,
    DeliveryReplayed,
    EngineOwner,
    ExecutionAlreadyFinished,
    ExecutionOwned,
    ExecutionRecorder,
    ExecutionRow,
    WebhookDelivery,
    load_execution,
)
from .persistence._transitions import TRANSITIONS, IllegalTransition, check_transition
from .run._engine import Engine, RunOutcome, referenced_secrets, request_cancel
from .run._executor import AttemptRequest, AttemptResult, PluginExecutor
from .run._scheduler import CANCEL_POLL_S, Dag
from .run._worker import CancelToken, EngineEvent, WorkerPool

__all__ = [
    "ActionSpec",
    "AttemptEnded",
    "AttemptRequest",
    "AttemptResult",
    "AttemptStarted",
    "CANCEL_POLL_S",
    "CancelOutcome",
    "CancelToken",
    "CannotRecordExecution",
    "ConfigError",
    "DELIVERY_HEADER",
    "Dag",
    "DeliveryReplayed",
    "Engine",
    "EngineConfig",
    "EngineEvent",
    "EngineOwner",
    "EngineRuntime",
    "ExecutionAlreadyFinished",
    "ExecutionEnded",
    "ExecutionObserver",
    "ExecutionOwned",
    "ExecutionRecorder",
    "ExecutionRow",
    "ExecutionStarted",
    "INPUT_TYPES",
    "IllegalTransition",
    "InputDecl",
    "InputSpec",
    "LauncherMode",
    "LostExecution",
    "MAX_SUBFLOW_DEPTH",
    "Maintenance",
    "Observers",
    "PluginError",
    "PluginExecutor",
    "PluginInfo",
    "PluginRegistry",
    "Problem",
    "RegisteredWorkflow",
    "RegistryError",
    "ResolvedInputs",
    "RetryPolicy",
    "RunOutcome",
    "SIGNATURE_HEADER",
    "SUBFLOW_TYPE",
    "SecretInputValues",
    "SecretNotQueueable",
    "SecretStore",
    "SecretsError",
    "Server",
    "ServerTimings",
    "TIMESTAMP_HEADER",
    "TRANSITIONS",
    "TaskEnded",
    "TaskSpec",
    "TaskStarted",
    "TemplateContext",
    "TemplateError",
    "Trigger",
    "UnknownAction",
    "WEBHOOK_MAX_BODY_BYTES",
    "WEBHOOK_TOLERANCE_MS",
    "WebhookDelivery",
    "WebhookOutcome",
    "WebhookReceiver",
    "WebhookRequest",
    "WebhookResponse",
    "WorkerPool",
    "Workflow",
    "WorkflowInvalid",
    "WorkflowLimits",
    "WorkflowNotRegistered",
    "WorkflowRegistry",
    "bind_inputs",
    "check_secrets",
    "check_subflows",
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
    "signed_headers",
    "uuid7",
    "validate_schedule",
    "workflow_limits",
]
