"""Workflow DSL: a valid file becomes a Workflow; each kind of problem is reported at its path."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from autokestra_engine import (
    PluginRegistry,
    Problem,
    RetryPolicy,
    SecretStore,
    Trigger,
    WorkflowInvalid,
    check_secrets,
    load_workflow,
    parse_workflow,
    secret_references,
)
from autokestra_engine.language._task_graph import find_cycles

REGISTRY = PluginRegistry.discover([])

FULL = """\
id: etl-daily_1
description: Nightly load
enabled: false
trigger: {type: cron, schedule: "*/5 * * * *"}
timeout: 1h30m
inputs:
  who: {type: string, default: world}
  count: {type: integer, required: true}
tasks:
  - id: fetch-users
    type: core/shell.run
    inputs: {command: "echo {{ inputs.who }} {{ execution.id }}"}
    timeout: 30s
    retry: {max: 2, backoff: {type: exponential, delay: 500ms, max_delay: 5s}}
  - id: transform
    type: core/log.emit
    needs: fetch-users
    inputs: {message: "{{ tasks.fetch-users.outputs.exit_code }}", level: WARN}
  - id: load
    type: core/python.run
    needs: [transform]
    inputs:
      script: "print(1)"
      args: ["{{ tasks.fetch-users.outputs.exit_code }}", "{{ inputs.count }}"]
"""


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(WorkflowInvalid) as info:
        parse_workflow(textwrap.dedent(text), REGISTRY, filename="wf.yaml")
    return info.value.problems


def assert_problem(text: str, path: str, fragment: str) -> None:
    found = problems_of(text)
    assert any(p.path == path and fragment in p.message for p in found), [str(p) for p in found]


class TestValidWorkflow:
    def test_every_field_is_parsed(self) -> None:
        """A complete workflow loads with ids, trigger, inputs, durations, retry and needs."""
        workflow = parse_workflow(FULL, REGISTRY, filename="etl.yaml")
        assert workflow.id == "etl-daily_1"
        assert workflow.description == "Nightly load"
        assert workflow.enabled is False
        assert workflow.trigger == Trigger(type="cron", schedule="*/5 * * * *")
        assert workflow.timeout_ms == 5_400_000
        assert workflow.inputs["who"].default == "world"
        assert workflow.inputs["count"].required is True
        assert workflow.inputs["count"].type == "integer"
        assert [t.id for t in workflow.tasks] == ["fetch-users", "transform", "load"]
        assert [t.position for t in workflow.tasks] == [0, 1, 2]
        first, second, third = workflow.tasks
        assert first.timeout_ms == 30_000
        assert first.retry == RetryPolicy(
            max=2, backoff="exponential", delay_ms=500, max_delay_ms=5000
        )
        assert second.needs == ("fetch-users",)
        assert third.needs == ("transform",)
        assert first.inputs == {"command": "echo {{ inputs.who }} {{ execution.id }}"}
        assert workflow.source == FULL
        assert workflow.source_path == "etl.yaml"

    def test_defaults(self) -> None:
        """Omitted keys take their defaults: enabled, manual trigger, no timeout, no retry."""
        workflow = parse_workflow(
            "id: w\ntasks:\n  - {id: a, type: core/log.emit, inputs: {message: hi}}\n", REGISTRY
        )
        assert workflow.enabled is True
        assert workflow.trigger == Trigger()
        assert workflow.timeout_ms is None
        assert workflow.tasks[0].retry == RetryPolicy()
        assert workflow.tasks[0].needs == ()

    def test_needs_may_name_a_later_task(self) -> None:
        """Dependencies may point forward in the file."""
        workflow = parse_workflow(
            """\
id: w
tasks:
  - {id: b, type: core/log.emit, needs: [a], inputs: {message: "{{ tasks.a.outputs.message }}"}}
  - {id: a, type: core/log.emit, inputs: {message: hi}}
""",
            REGISTRY,
        )
        assert workflow.task("b").needs == ("a",)

    def test_anchors_merge_keys_and_x_keys(self) -> None:
        """YAML anchors and `<<` merge keys work; top-level `x-` keys hold shared snippets."""
        workflow = parse_workflow(
            """\
id: w
x-log: &log {type: core/log.emit, retry: {max: 1}}
tasks:
  - {<<: *log, id: a, inputs: {message: one}}
  - {<<: *log, id: b, inputs: {message: two}}
""",
            REGISTRY,
        )
        assert [(t.id, t.type, t.retry.max) for t in workflow.tasks] == [
            ("a", "core/log.emit", 1),
            ("b", "core/log.emit", 1),
        ]

    def test_load_workflow_reads_a_file(self, tmp_path: Path) -> None:
        """load_workflow reads the file and records where it came from."""
        path = tmp_path / "flow.yaml"
        path.write_text(FULL)
        assert load_workflow(path, REGISTRY).source_path == str(path)


LOG = "type: core/log.emit"
OK = "{id: a, type: core/log.emit, inputs: {message: m}}"


def wf(*tasks: str, head: str = "") -> str:
    """A workflow file with the given top-level lines and task flow mappings."""
    body = "".join(f"  - {task}\n" for task in tasks)
    return f"id: w\n{head}tasks:\n{body}"


def log_task(task_id: str, extra: str = "", message: str = "m") -> str:
    return f"{{id: {task_id}, {LOG}, inputs: {{message: {message}}}{extra}}}"


# (case name, YAML, expected path, fragment of the message)
CASES = [
    ("missing id", f"tasks: [{OK}]", "id", "missing required workflow id"),
    ("bad workflow id", f"id: 'has space'\ntasks: [{OK}]", "id", "invalid workflow id"),
    ("long workflow id", f"id: {'x' * 65}\ntasks: [{OK}]", "id", "invalid workflow id"),
    ("secrets key", wf(OK, head="secrets: {A: b}\n"), "secrets", "may not declare secrets"),
    ("unknown top key", wf(OK, head="task: []\n"), "task", "unknown key"),
    ("missing tasks", "id: w", "tasks", "missing required key"),
    ("empty tasks", "id: w\ntasks: []", "tasks", "at least one task"),
    ("tasks not a list", "id: w\ntasks: {a: 1}", "tasks", "expected a list"),
    ("task not a mapping", wf("hello"), "tasks[0]", "expected a mapping"),
    ("missing task id", wf(f"{{{LOG}}}"), "tasks[0].id", "missing required task id"),
    ("bad task id", wf(log_task("'a.b'")), "tasks[0].id", "invalid task id"),
    ("unknown task key", wf(log_task("a", ", need: [b]")), "tasks[0].need", "unknown key"),
    ("missing type", wf("{id: a}"), "tasks[0].type", "missing required task type"),
    ("bad type format", wf("{id: a, type: Core/Log}"), "tasks[0].type", "invalid task type"),
    ("unknown plugin", wf("{id: a, type: acme/probe.run}"), "tasks[0].type", "unknown plugin"),
    ("unknown action", wf("{id: a, type: core/log.shout}"), "tasks[0].type", "no action 'shout'"),
    ("duplicate task ids", wf(OK, OK), "tasks[1].id", "duplicate task id 'a' (first at tasks[0])"),
    (
        "unknown need",
        wf(OK, log_task("b", ", needs: [a, fetch]")),
        "tasks[1].needs[1]",
        "unknown task 'fetch'",
    ),
    ("self need", wf(log_task("a", ", needs: [a]")), "tasks[0].needs[0]", "cannot need itself"),
    (
        "duplicate need",
        wf(OK, log_task("b", ", needs: [a, a]")),
        "tasks[1].needs[1]",
        "duplicate dependency",
    ),
    ("needs not a list", wf(log_task("a", ", needs: {x: 1}")), "tasks[0].needs", "expected a list"),
    (
        "two-task cycle",
        wf(log_task("a", ", needs: [b]"), log_task("b", ", needs: [a]")),
        "tasks[0].needs",
        "dependency cycle: a -> b -> a",
    ),
    (
        "three-task cycle",
        wf(
            log_task("x"),
            log_task("c", ", needs: [b]"),
            log_task("a", ", needs: [c, x]"),
            log_task("b", ", needs: [a]"),
        ),
        "tasks[1].needs",
        "dependency cycle: c -> b -> a -> c",
    ),
    (
        "undeclared input",
        wf(f"{{id: a, {LOG}, inputs: {{message: m, colour: red}}}}"),
        "tasks[0].inputs.colour",
        "not declared by core/log.emit",
    ),
    (
        "missing required input",
        wf("{id: a, type: core/shell.run}"),
        "tasks[0].inputs",
        "missing required input 'command'",
    ),
    (
        "wrong input type",
        wf("{id: a, type: core/shell.run, inputs: {command: [ls]}}"),
        "tasks[0].inputs.command",
        "expected string, got array",
    ),
    (
        "input not in enum",
        wf(f"{{id: a, {LOG}, inputs: {{message: m, level: LOUD}}}}"),
        "tasks[0].inputs.level",
        "must be one of DEBUG, INFO, WARN, ERROR",
    ),
    (
        "two templates are text",
        wf(
            "{id: a, type: core/python.run,"
            " inputs: {script: x, args: '{{ inputs.a }}{{ inputs.b }}'}}"
        ),
        "tasks[0].inputs.args",
        "expected array, got string",
    ),
    (
        "bad duration input",
        wf("{id: a, type: core/wait.sleep, inputs: {duration: 2 seconds}}"),
        "tasks[0].inputs.duration",
        "invalid duration",
    ),
    ("bad workflow timeout", wf(OK, head="timeout: 10\n"), "timeout", "expected a duration"),
    ("bad task timeout", wf(log_task("a", ", timeout: 5 min")), "tasks[0].timeout", "invalid"),
    ("zero duration", wf(log_task("a", ", timeout: 0s")), "tasks[0].timeout", "must be positive"),
    (
        "bad retry max",
        wf(log_task("a", ", retry: {max: -1}")),
        "tasks[0].retry.max",
        "whole number >= 0",
    ),
    (
        "bad backoff type",
        wf(log_task("a", ", retry: {max: 1, backoff: {type: linear}}")),
        "tasks[0].retry.backoff.type",
        "fixed or exponential",
    ),
    (
        "bad backoff delay",
        wf(log_task("a", ", retry: {max: 1, backoff: {delay: 1.5s}}")),
        "tasks[0].retry.backoff.delay",
        "invalid duration",
    ),
    (
        "bad max delay",
        wf(log_task("a", ", retry: {max: 1, backoff: {max_delay: forever}}")),
        "tasks[0].retry.backoff.max_delay",
        "invalid duration",
    ),
    (
        "bad cron",
        wf(OK, head="trigger: {type: cron, schedule: '61 * * * *'}\n"),
        "trigger.schedule",
        "invalid cron expression",
    ),
    (
        "cron without schedule",
        wf(OK, head="trigger: {type: cron}\n"),
        "trigger.schedule",
        "needs a schedule",
    ),
    (
        "schedule on manual",
        wf(OK, head="trigger: {type: manual, schedule: '* * * * *'}\n"),
        "trigger.schedule",
        "only cron triggers",
    ),
    ("unknown trigger", wf(OK, head="trigger: {type: email}\n"), "trigger.type", "unknown trigger"),
    ("enabled not bool", wf(OK, head="enabled: maybe\n"), "enabled", "expected true or false"),
    (
        "bad input type",
        wf(OK, head="inputs: {n: {type: decimal}}\n"),
        "inputs.n.type",
        "unknown type",
    ),
    (
        "bad input default",
        wf(OK, head="inputs: {n: {type: integer, default: many}}\n"),
        "inputs.n.default",
        "expected integer, got string",
    ),
    (
        "template to non-upstream task",
        wf(OK, log_task("b", message="'{{ tasks.a.outputs.message }}'")),
        "tasks[1].inputs.message",
        "task 'a' is not an upstream dependency of 'b'",
    ),
    (
        "template to unknown task",
        wf(log_task("a", message="'{{ tasks.nope.outputs.x }}'")),
        "tasks[0].inputs.message",
        "unknown task 'nope'",
    ),
    (
        "template to own outputs",
        wf(log_task("a", message="'{{ tasks.a.outputs.x }}'")),
        "tasks[0].inputs.message",
        "cannot read its own outputs",
    ),
    (
        "template to undeclared input",
        wf(log_task("a", message="'hi {{ inputs.who }}'")),
        "tasks[0].inputs.message",
        "unknown workflow input 'who'",
    ),
    (
        "unknown template namespace",
        wf(log_task("a", message="'{{ env.HOME }}'")),
        "tasks[0].inputs.message",
        "unknown template reference",
    ),
    (
        "code in template",
        wf(log_task("a", message="\"{{ __import__('os') }}\"")),
        "tasks[0].inputs.message",
        "invalid template",
    ),
    (
        "unterminated template",
        wf(log_task("a", message="'{{ inputs.x'")),
        "tasks[0].inputs.message",
        "unterminated template",
    ),
    (
        "nested template path",
        wf("{id: a, type: core/python.run, inputs: {script: x, args: [ok, '{{ secrets.b-c }}']}}"),
        "tasks[0].inputs.args[1]",
        "invalid secret name",
    ),
    ("top level not mapping", "- a\n- b", "workflow", "expected a mapping"),
    ("duplicate yaml key", f"id: w\nid: v\ntasks: [{OK}]", "2:1", "duplicate key 'id'"),
    ("yaml syntax error", "id: w\n  tasks: oops: [\n", "2:8", "mapping values are not allowed"),
]


class TestProblems:
    @pytest.mark.parametrize(
        ("text", "path", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
    )
    def test_problem_is_reported_at_its_path(self, text: str, path: str, fragment: str) -> None:
        """Each kind of mistake is reported with the path of the offending value."""
        assert_problem(text, path, fragment)

    def test_every_problem_is_reported_at_once(self) -> None:
        """Validation does not stop at the first problem: all of them come back, in file order."""
        found = problems_of(
            """\
            id: w
            secrets: {X: y}
            timeout: soon
            tasks:
              - {id: a, type: core/nope.run}
              - {id: b, type: core/shell.run, needs: [zz]}
              - {id: a, type: core/log.emit, inputs: {message: m}}
            """
        )
        assert [p.path for p in found] == [
            "secrets",
            "timeout",
            "tasks[0].type",
            "tasks[1].inputs",
            "tasks[1].needs[0]",
            "tasks[2].id",
        ]

    def test_problem_prints_as_path_colon_message(self) -> None:
        """str(problem) is '<path>: <message>', the form `workflow validate` prints."""
        problem = problems_of("id: w\ntasks: [{id: a, type: core/shell.run}]")[0]
        assert str(problem) == "tasks[0].inputs: missing required input 'command' of core/shell.run"

    def test_unreadable_file(self, tmp_path: Path) -> None:
        """A file that cannot be read is one problem at path 'file'."""
        with pytest.raises(WorkflowInvalid) as info:
            load_workflow(tmp_path / "missing.yaml", REGISTRY)
        assert info.value.problems[0].path == "file"
        assert "cannot read" in info.value.problems[0].message

    def test_transitive_upstream_is_allowed(self) -> None:
        """A task may read outputs of any task it depends on, directly or not."""
        workflow = parse_workflow(
            """\
id: w
tasks:
  - {id: a, type: core/log.emit, inputs: {message: m}}
  - {id: b, type: core/log.emit, needs: [a], inputs: {message: m}}
  - {id: c, type: core/log.emit, needs: [b], inputs: {message: "{{ tasks.a.outputs.message }}"}}
""",
            REGISTRY,
        )
        assert workflow.task("c").needs == ("b",)


class TestCycles:
    def test_independent_cycles_are_each_named_once(self) -> None:
        """Two separate cycles give two entries, each starting at its first-declared task."""
        needs = {"a": ("b",), "b": ("a",), "c": ("d",), "d": ("e",), "e": ("c",), "f": ()}
        assert find_cycles(needs) == [["a", "b", "a"], ["c", "d", "e", "c"]]

    def test_acyclic_graph_has_none(self) -> None:
        """A diamond is not a cycle."""
        assert find_cycles({"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")}) == []


class TestSecretReferences:
    WORKFLOW = """\
id: w
tasks:
  - {id: a, type: core/shell.run, inputs: {command: "curl -H 'X: {{ secrets.API_TOKEN }}'"}}
  - {id: b, type: core/shell.run, inputs: {command: "echo", env: {K: "{{ secrets.OTHER }}"}}}
"""

    def test_references_are_listed_with_paths(self) -> None:
        """secret_references names every secret used and where."""
        workflow = parse_workflow(self.WORKFLOW, REGISTRY)
        assert secret_references(workflow) == {
            "API_TOKEN": ["tasks[0].inputs.command"],
            "OTHER": ["tasks[1].inputs.env.K"],
        }

    def test_unknown_secret_fails_the_run_check(self) -> None:
        """check_secrets reports each secret without a value, with a hint how to set it."""
        workflow = parse_workflow(self.WORKFLOW, REGISTRY)
        with pytest.raises(WorkflowInvalid) as info:
            check_secrets(workflow, SecretStore({"API_TOKEN": "value-1234"}))
        assert [str(p) for p in info.value.problems] == [
            "tasks[1].inputs.env.K: unknown secret 'OTHER': set AUTOKESTRA_SECRET_OTHER or add "
            "OTHER to the secrets file"
        ]

    def test_known_secrets_pass(self) -> None:
        """With every secret present, check_secrets returns quietly."""
        workflow = parse_workflow(self.WORKFLOW, REGISTRY)
        check_secrets(workflow, SecretStore({"API_TOKEN": "value-1234", "OTHER": "x" * 8}))


KEYS = st.sampled_from(
    [
        "id",
        "type",
        "needs",
        "inputs",
        "retry",
        "timeout",
        "tasks",
        "trigger",
        "enabled",
        "max",
        "backoff",
        "delay",
        "schedule",
        "message",
        "command",
        "secrets",
        "x",
        "a",
        "b",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from(
        [
            "a",
            "b",
            "core/log.emit",
            "core/shell.run",
            "1s",
            "{{ tasks.a.outputs.x }}",
            "{{ inputs.a }}",
            "{{",
            "cron",
            "* * * * *",
            "",
        ]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=25,
)


class TestRobustness:
    def test_alias_bomb_is_refused_quickly(self) -> None:
        """A 'billion laughs' document is one problem, found without expanding it."""
        lines = ["id: w", "l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
        for level in range(1, 10):
            refs = ", ".join([f"*l{level - 1}"] * 10)
            lines.append(f"l{level}: &l{level} [{refs}]")
        lines.append("tasks: [{id: a, type: core/python.run, inputs: {script: x, args: *l9}}]")
        started = time.monotonic()
        found = problems_of("\n".join(lines))
        assert time.monotonic() - started < 5
        assert [p.path for p in found] == ["workflow"]
        assert "aliases" in found[0].message

    @settings(max_examples=300, deadline=None)
    @given(VALUES)
    def test_any_document_is_valid_or_reported(self, document: object) -> None:
        """Whatever the YAML holds, the loader returns a Workflow or raises WorkflowInvalid."""
        text = yaml.safe_dump(document)
        try:
            parse_workflow(text, REGISTRY)
        except WorkflowInvalid as exc:
            assert exc.problems
            assert all(p.path and p.message for p in exc.problems)

    @settings(max_examples=300, deadline=None)
    @given(
        st.fixed_dictionaries(
            {
                "id": SCALARS,
                "tasks": st.lists(st.dictionaries(KEYS, VALUES, max_size=6), max_size=4),
            },
            optional={"inputs": VALUES, "trigger": VALUES, "timeout": VALUES},
        )
    )
    def test_workflow_shaped_documents(self, document: dict[str, object]) -> None:
        """Workflow-shaped documents with arbitrary task bodies never crash the validator."""
        try:
            parse_workflow(yaml.safe_dump(document), REGISTRY)
        except WorkflowInvalid as exc:
            assert exc.problems
