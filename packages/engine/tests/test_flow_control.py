"""Flow control in the language: literal braces, ``if:`` conditions, trigger rules, handlers."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autokestra_engine import (
    PluginRegistry,
    SecretStore,
    TemplateContext,
    WorkflowInvalid,
    parse_workflow,
)
from autokestra_engine.language._conditions import (
    ConditionError,
    ConditionScope,
    parse_condition,
)
from autokestra_engine.language._model import TaskSpec
from autokestra_engine.language._templates import resolve_value
from autokestra_engine.run._scheduler import decide
from autokestra_obs_schema import Reason, State

REGISTRY = PluginRegistry.discover([])
CTX = TemplateContext(inputs={}, task_outputs={}, secrets=SecretStore({}), execution_id="e-1")
SCOPE = ConditionScope(
    inputs={"env": "prod", "n": 3, "tags": ["a", "b"], "empty": ""},
    outputs={"fetch": {"count": 5, "rows": [{"id": 7}], "status": "ok"}},
    states={"fetch": "SUCCESS", "lint": "SKIPPED"},
)


def evaluate(text: str) -> bool:
    return parse_condition(text).evaluate(SCOPE)


class TestLiteralBraces:
    def test_quoted_literal_gives_its_text(self) -> None:
        """{{ '{{' }} writes a literal {{ and a lone }} stays as written."""
        real, masked, _ = resolve_value("--format '{{ '{{' }}.State}}'", CTX)
        assert real == masked == "--format '{{.State}}'"

    def test_double_quotes_work_too(self) -> None:
        """Either quote character delimits a literal."""
        assert resolve_value('{{ "{{" }}x}}', CTX)[0] == "{{x}}"

    def test_literal_validates_in_a_workflow(self) -> None:
        """A workflow using the escape validates (no unterminated-template problem)."""
        workflow = parse_workflow(
            textwrap.dedent(
                """\
                id: w
                tasks:
                  - id: a
                    type: core/shell.run
                    inputs: {command: "echo '{{ '{{' }}.State}}'"}
                """
            ),
            REGISTRY,
        )
        assert workflow.tasks[0].inputs["command"] == "echo '{{ '{{' }}.State}}'"

    @given(st.text(alphabet=st.characters(blacklist_characters="'"), max_size=20))
    def test_any_text_without_the_quote_round_trips(self, text: str) -> None:
        """Whatever a literal holds comes out verbatim, never interpreted."""
        assert resolve_value("{{ '" + text + "' }}", CTX)[0] == text


class TestConditions:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("tasks.fetch.outputs.count > 0", True),
            ("tasks.fetch.outputs.count >= 6", False),
            ("inputs.env == 'prod'", True),
            ('inputs.env != "prod"', False),
            ("inputs.env == 'prod' and inputs.n < 2", False),
            ("inputs.env == 'dev' or inputs.n == 3", True),
            ("not inputs.empty", True),
            ("not (inputs.n == 3 and inputs.env == 'prod')", False),
            ("'a' in inputs.tags", True),
            ("'ro' in tasks.fetch.outputs.status", False),
            ("tasks.fetch.outputs.rows.0.id == 7", True),
            ("tasks.fetch.outputs.missing == null", True),
            ("tasks.fetch.state == 'SUCCESS'", True),
            ("tasks.lint.state == 'SKIPPED'", True),
            ("inputs.n", True),
            ("true", True),
            ("false or 1.5 > 1", True),
        ],
    )
    def test_evaluates(self, text: str, expected: bool) -> None:
        """Comparisons, boolean operators, paths and literals give the expected result."""
        assert evaluate(text) is expected

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "inputs.env ==",
            "(inputs.n == 3",
            "__import__('os')",
            "inputs.env.__class__ == 1; 2",
            "tasks.fetch.result",
            "execution.id == 'x'",
            "inputs.n + 1 > 2",
        ],
    )
    def test_rejects_what_is_not_the_language(self, text: str) -> None:
        """Anything outside the small grammar is a ConditionError, never evaluated."""
        with pytest.raises(ConditionError):
            parse_condition(text)

    def test_unorderable_comparison_is_an_error(self) -> None:
        """'prod' < 3 is not silently false: it raises at evaluation."""
        with pytest.raises(ConditionError, match="cannot compare"):
            evaluate("inputs.env < 3")

    def test_paths_are_listed(self) -> None:
        """A condition lists the paths it reads, for validation."""
        assert parse_condition("inputs.a == tasks.b.outputs.c").paths == (
            ("inputs", "a"),
            ("tasks", "b", "outputs", "c"),
        )


def task(run_if: Any = "all_success") -> TaskSpec:
    return TaskSpec(id="t", type="core/log.emit", needs=("a", "b"), run_if=run_if)


class TestTriggerRules:
    S, F, K, C, R = State.SUCCESS, State.FAILED, State.SKIPPED, State.CANCELLED, State.RUNNING

    @pytest.mark.parametrize(
        "case",
        [
            ("all_success", S, S, "run", None, None),
            ("all_success", S, R, "wait", None, None),
            ("all_success", F, R, "end", C, Reason.UPSTREAM_FAILED),
            ("all_success", K, R, "end", K, Reason.UPSTREAM_SKIPPED),
            ("none_failed", K, S, "run", None, None),
            ("none_failed", C, S, "end", C, Reason.UPSTREAM_FAILED),
            ("any_failed", F, R, "wait", None, None),
            ("any_failed", F, S, "run", None, None),
            ("any_failed", C, K, "run", None, None),
            ("any_failed", S, K, "end", K, Reason.TRIGGER_RULE_UNMET),
            ("always", F, C, "run", None, None),
            ("always", S, R, "wait", None, None),
        ],
    )
    def test_rule_table(
        self, case: tuple[str, State, State, str, State | None, Reason | None]
    ) -> None:
        """Each rule runs, waits or ends the task as documented in docs/workflows.md."""
        rule, a, b, action, state, reason = case
        verdict = decide(task(rule), {"a": a, "b": b}, ())
        assert (verdict.action, verdict.state, verdict.reason) == (action, state, reason)

    def test_allowed_failure_counts_as_success(self) -> None:
        """An upstream failure with allow_failure lets all_success dependants run."""
        assert decide(task(), {"a": State.FAILED, "b": State.SUCCESS}, {"a"}).action == "run"


def problems(text: str) -> list[str]:
    with pytest.raises(WorkflowInvalid) as caught:
        parse_workflow(textwrap.dedent(text), REGISTRY)
    return [str(problem) for problem in caught.value.problems]


class TestValidation:
    def test_flow_keys_parse(self) -> None:
        """if, run_if, allow_failure and on_failure reach the model."""
        workflow = parse_workflow(
            textwrap.dedent(
                """\
                id: w
                inputs: {env: {type: string, default: dev}}
                tasks:
                  - {id: a, type: core/log.emit, inputs: {message: hi}, allow_failure: true}
                  - id: b
                    type: core/log.emit
                    needs: [a]
                    if: inputs.env == 'prod' and tasks.a.state == 'SUCCESS'
                    run_if: always
                    inputs: {message: hi}
                on_failure:
                  - {id: tell, type: core/log.emit, inputs: {message: "{{ tasks.a.outputs.x }}"}}
                """
            ),
            REGISTRY,
        )
        a, b = workflow.tasks
        assert a.allow_failure and not b.allow_failure
        assert b.condition == "inputs.env == 'prod' and tasks.a.state == 'SUCCESS'"
        assert b.run_if == "always"
        assert [t.id for t in workflow.on_failure] == ["tell"]
        assert workflow.on_failure[0].position == 2
        assert [t.id for t in workflow.all_tasks] == ["a", "b", "tell"]

    def test_every_new_problem_has_its_path(self) -> None:
        """Bad conditions, rules, flags and handler entries are reported where they are."""
        found = problems(
            """\
            id: w
            tasks:
              - {id: a, type: core/log.emit, inputs: {message: hi}, allow_failure: maybe}
              - {id: b, type: core/log.emit, inputs: {message: hi}, if: "inputs.nope == 1"}
              - {id: c, type: core/log.emit, inputs: {message: hi}, if: "tasks.a.state == 'X'"}
              - {id: d, type: core/log.emit, inputs: {message: hi}, if: "inputs.x ==", needs: [a]}
              - {id: e, type: core/log.emit, inputs: {message: hi}, run_if: sometimes}
              - {id: f, type: core/log.emit, inputs: {message: hi}, if: "{{ inputs.x }}"}
            on_failure:
              - {id: a, type: core/log.emit, inputs: {message: hi}}
              - {id: g, type: core/log.emit, inputs: {message: hi}, needs: [b]}
            """
        )
        assert found == [
            "tasks[0].allow_failure: expected true or false",
            "tasks[1].if: inputs.nope: unknown workflow input 'nope' (declared: none)",
            "tasks[2].if: tasks.a.state: task 'a' is not an upstream dependency of 'c'"
            " (add it to needs)",
            "tasks[3].if: invalid condition: incomplete condition",
            "tasks[4].run_if: unknown rule 'sometimes' (use all_success, none_failed,"
            " any_failed, always)",
            "tasks[5].if: write the condition without {{ }}: e.g. tasks.fetch.outputs.count > 0",
            "on_failure[0].id: duplicate task id 'a' (first at tasks[0])",
            "on_failure[1].needs[0]: unknown task 'b'",
        ]

    def test_on_failure_must_be_a_list(self) -> None:
        """on_failure takes a list of tasks."""
        assert problems(
            "id: w\ntasks: [{id: a, type: core/log.emit, inputs: {message: hi}}]\non_failure: x\n"
        ) == ["on_failure: expected a list of tasks, got string"]


class TestForEachValidation:
    def test_for_each_parses(self) -> None:
        """A for_each template, its concurrency and {{ item }}/{{ index }} reach the model."""
        workflow = parse_workflow(
            textwrap.dedent(
                """\
                id: w
                inputs: {files: {type: array, default: [a, b]}}
                tasks:
                  - id: each
                    type: core/log.emit
                    for_each: "{{ inputs.files }}"
                    concurrency: 2
                    inputs: {message: "{{ index }}: {{ item }}"}
                  - id: lit
                    type: core/log.emit
                    for_each: [1, 2]
                    inputs: {message: "{{ item }}"}
                """
            ),
            REGISTRY,
        )
        each, lit = workflow.tasks
        assert (each.for_each, each.concurrency) == ("{{ inputs.files }}", 2)
        assert (lit.for_each, lit.concurrency) == ([1, 2], None)

    def test_for_each_problems_have_paths(self) -> None:
        """A non-list for_each, a bad concurrency, an item outside for_each are reported."""
        assert problems(
            """\
            id: w
            tasks:
              - {id: a, type: core/log.emit, inputs: {message: hi}, for_each: "x {{ inputs.y }}"}
              - {id: b, type: core/log.emit, inputs: {message: hi}, concurrency: 2}
              - {id: c, type: core/log.emit, inputs: {message: "{{ item }}"}}
              - {id: d, type: core/log.emit, inputs: {message: hi}, for_each: [1], concurrency: 0}
              - {id: e, type: core/log.emit, inputs: {message: hi},
                 for_each: "{{ tasks.z.outputs.l }}"}
            """
        ) == [
            "tasks[0].for_each: expected a list or one template giving a list,"
            " e.g. {{ tasks.list.outputs.items }}",
            "tasks[1].concurrency: only a task with for_each takes a concurrency",
            "tasks[2].inputs.message: {{ item }}: only the inputs of a task with for_each have"
            " an item",
            "tasks[3].concurrency: expected a whole number >= 1, got 0",
            "tasks[4].for_each: {{ tasks.z.outputs.l }}: unknown task 'z'",
        ]
