"""Fuzzing the workflow parser (Hypothesis, fixed budget, derandomized: reproducible in CI).

Whatever the text, ``parse_workflow`` returns a workflow or raises ``WorkflowInvalid``
with at least one problem: never another exception (a traceback for the user), never a hang.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autokestra_engine import PluginRegistry, WorkflowInvalid, WorkflowLimits, parse_workflow

BUDGET = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

REGISTRY = PluginRegistry.discover([])

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["core/log.emit", "core/shell.run", "a", "{{ inputs.x }}", "1s", "-1s"]),
)
_keys = st.one_of(
    st.sampled_from(
        ["id", "tasks", "type", "needs", "inputs", "retry", "timeout", "trigger", "max"]
    ),
    st.text(max_size=8),
)
_documents = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_keys, children, max_size=5)
    ),
    max_leaves=25,
)


def _check(text: str) -> None:
    try:
        workflow = parse_workflow(text, REGISTRY, filename="fuzz.yaml", limits=WorkflowLimits())
    except WorkflowInvalid as exc:
        assert exc.problems, "a refusal names at least one problem"
        for problem in exc.problems:
            str(problem).encode("utf-8")  # every message can be printed
        return
    assert workflow.tasks


class TestParserFuzz:
    @BUDGET
    @given(st.text(max_size=300))
    def test_arbitrary_text(self, text: str) -> None:
        """Any text: a workflow or WorkflowInvalid, nothing else."""
        _check(text)

    @BUDGET
    @given(_documents)
    def test_arbitrary_documents(self, document: Any) -> None:
        """Any YAML document built from workflow-like keys: a workflow or WorkflowInvalid."""
        _check(yaml.safe_dump(document, allow_unicode=True))

    @BUDGET
    @given(
        st.lists(
            st.fixed_dictionaries(
                {
                    "id": st.from_regex(r"[a-c]{1,2}", fullmatch=True),
                    "type": st.sampled_from(["core/log.emit", "core/wait.sleep", "x/y.z"]),
                },
                optional={
                    "needs": st.lists(st.from_regex(r"[a-c]{1,2}", fullmatch=True), max_size=3),
                    "inputs": st.dictionaries(st.sampled_from(["message", "level"]), _scalars),
                },
            ),
            min_size=1,
            max_size=6,
        )
    )
    def test_task_graphs(self, tasks: list[dict[str, Any]]) -> None:
        """Random task lists (duplicates, cycles, unknown needs): never a crash."""
        _check(yaml.safe_dump({"id": "g", "tasks": tasks}))

    @pytest.mark.parametrize(
        "text",
        [
            'id: s\ntasks: [{id: a, type: core/log.emit, inputs: {message: "\\ud800"}}]\n',
            'id: s\ntasks: [{id: a, type: core/log.emit, inputs: {"\\udfff": x}}]\n',
            "id: s\ntasks: " + "[" * 70 + "]" * 70 + "\n",
            "id: s\ntasks: {" * 80 + "}" * 80,
            "tasks: !!binary aGVsbG8=\n",
            "&a [*a]\n",
            "\x1f",
            "id: x\x07\ntasks: []\n",
        ],
    )
    def test_found_cases(self, text: str) -> None:
        """What fuzzing found, kept: a control character (a traceback from PyYAML's reader,
        raised before parsing), a lone surrogate quoted in a problem (unprintable), an alias
        to its own ancestor (RecursionError); and depth, tags."""
        _check(text)
