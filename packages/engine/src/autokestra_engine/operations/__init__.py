"""Operating the engine over time: crash recovery, registered workflows and the server.

``_recovery`` (ending executions of dead engine processes), ``_workflow_registry``
(workflows applied with ``workflow apply`` and their cron fires) and ``_server_loop`` (the
long-running ``workflow server start`` process). The top floor below ``_runtime``.
"""
