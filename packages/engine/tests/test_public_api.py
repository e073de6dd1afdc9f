"""autokestra_engine's public API, pinned: adding or removing a name is a deliberate act."""

from __future__ import annotations

import autokestra_engine

#: Every public name, sorted. The vocabulary (State, Reason, TERMINAL_STATES, SECRET_MASK,
#: ExecutionNotFound, DEFAULT_DB_PATH) is autokestra_obs_schema's and is not re-exported.
PUBLIC_NAMES = [
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

VOCABULARY = (
    "State",
    "Reason",
    "TERMINAL_STATES",
    "SECRET_MASK",
    "ExecutionNotFound",
    "DEFAULT_DB_PATH",
)


class TestPublicApi:
    def test_all_is_pinned(self) -> None:
        """__all__ is exactly the pinned list, in sorted order."""
        assert autokestra_engine.__all__ == PUBLIC_NAMES
        assert sorted(autokestra_engine.__all__) == autokestra_engine.__all__

    def test_every_name_resolves(self) -> None:
        """Each exported name is an attribute of the package."""
        missing = [n for n in PUBLIC_NAMES if not hasattr(autokestra_engine, n)]
        assert missing == []

    def test_vocabulary_is_not_re_exported(self) -> None:
        """The vocabulary comes from autokestra_obs_schema only, never through the engine."""
        assert [n for n in VOCABULARY if hasattr(autokestra_engine, n)] == []

    def test_every_domain_error_is_an_autokestra_error(self) -> None:
        """The CLI maps errors with one ``except AutokestraError``: every engine error is one."""
        from autokestra_obs_schema import AutokestraError

        errors = [
            getattr(autokestra_engine, n)
            for n in PUBLIC_NAMES
            if isinstance(getattr(autokestra_engine, n), type)
            and issubclass(getattr(autokestra_engine, n), Exception)
        ]
        assert len(errors) >= 12
        assert [e.__name__ for e in errors if not issubclass(e, AutokestraError)] == []
