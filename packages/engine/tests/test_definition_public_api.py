"""The definition half of autokestra_engine's public API, pinned."""

from __future__ import annotations

import autokestra_engine

DEFINITION_NAMES = {
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
    "check_secrets",
    "load_config",
    "load_manifest",
    "load_workflow",
    "parse_size_bytes",
    "parse_workflow",
    "resolve_task_inputs",
    "secret_references",
}


class TestDefinitionApi:
    def test_definition_names_exported(self) -> None:
        """Every definition-side name is in __all__ and resolves (a removal is deliberate)."""
        assert set(autokestra_engine.__all__) >= DEFINITION_NAMES
        for name in DEFINITION_NAMES:
            assert getattr(autokestra_engine, name) is not None

    def test_secret_mask_matches_the_redactor(self) -> None:
        """Stored masked inputs and redacted logs show secrets the same way."""
        from autokestra_obs_schema import SECRET_MASK as MASK

        assert autokestra_engine.SECRET_MASK == MASK
