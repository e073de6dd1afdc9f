"""Running executions: plugin processes, the worker pool, the DAG scheduler and the engine.

``_executor`` (one attempt as a child process), ``_worker`` (the pool and the runner of a
task run), ``_scheduler`` (one execution's DAG loop) and ``_engine`` (the facade that creates,
runs and cancels executions). Builds on ``language`` and ``persistence``; imports nothing
from ``operations``.
"""
