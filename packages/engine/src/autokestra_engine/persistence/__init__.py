"""The write path: execution ids, the transition table and every engine write to the database.

``_ids`` (UUID7 execution and engine ids), ``_transitions`` (which state changes are
allowed) and ``_recorder`` (:class:`ExecutionRecorder`: executions, task runs, attempts and
cancel requests, each in one transaction of the process's Writer). Imports nothing from
``language``, ``run`` or ``operations``.
"""
