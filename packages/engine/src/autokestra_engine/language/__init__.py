"""The language: workflow and plugin definitions, from YAML to validated, typed records.

``_model`` (the records), ``_problems`` (definition errors), ``_inputs`` (typed values),
``_templates`` (the ``{{ ... }}`` resolver), ``_plugin_registry`` (``plugin.yaml`` manifests),
``_yaml_document`` (safe YAML loading), ``_task_graph`` (dependency cycles and upstreams),
``_workflow_parser`` (workflow files) and ``_secret_analysis`` (what is secret in a workflow
and how an execution is stored). Imports nothing from ``persistence``, ``run`` or
``operations``; the public names are re-exported by ``autokestra_engine``.
"""
