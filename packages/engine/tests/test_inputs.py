"""Run inputs: text from --input converted to the declared type, defaults, every problem."""

from __future__ import annotations

from typing import Any

import pytest

from autokestra_engine import PluginRegistry, WorkflowInvalid, bind_inputs, parse_workflow
from autokestra_engine.language._inputs import coerce_text, type_error

WORKFLOW = parse_workflow(
    """\
id: w
inputs:
  name: {type: string, default: world}
  count: {type: integer, required: true}
  ratio: {type: number}
  dry: {type: boolean, default: false}
  tags: {type: array}
  opts: {type: object}
  wait: {type: duration}
tasks:
  - {id: a, type: core/log.emit, inputs: {message: "{{ inputs.name }}"}}
""",
    PluginRegistry.discover([]),
)


class TestBind:
    def test_text_is_converted_and_defaults_filled(self) -> None:
        """--input text becomes the declared type; undeclared defaults are filled in."""
        values = bind_inputs(
            WORKFLOW,
            {"count": "3", "ratio": "0.5", "tags": '["a", "b"]', "opts": '{"k": 1}', "wait": "2s"},
        )
        assert values == {
            "count": 3,
            "ratio": 0.5,
            "tags": ["a", "b"],
            "opts": {"k": 1},
            "wait": "2s",
            "name": "world",
            "dry": False,
        }

    def test_typed_values_are_checked(self) -> None:
        """Non-text values (from an API) must already have the declared type."""
        assert bind_inputs(WORKFLOW, {"count": 4, "dry": True})["dry"] is True
        with pytest.raises(WorkflowInvalid, match=r"inputs\.count: expected integer, got number"):
            bind_inputs(WORKFLOW, {"count": 1.5})

    def test_every_problem_is_reported(self) -> None:
        """Undeclared names, bad values and missing required inputs are all reported."""
        with pytest.raises(WorkflowInvalid) as info:
            bind_inputs(WORKFLOW, {"colour": "red", "ratio": "half", "dry": "perhaps"})
        assert [str(p) for p in info.value.problems] == [
            "inputs.colour: undeclared input (declared: count, dry, name, opts, ratio, tags, wait)",
            "inputs.ratio: expected a number, got 'half'",
            "inputs.dry: expected true or false, got 'perhaps'",
            "inputs.count: required input has no value",
        ]


class TestCoerce:
    @pytest.mark.parametrize(
        ("text", "type_name", "expected"),
        [
            ("12", "integer", 12),
            ("1e3", "number", 1000),
            ("2.5", "number", 2.5),
            ("yes", "boolean", True),
            ("0", "boolean", False),
            ("[1]", "array", [1]),
            ("hello", "string", "hello"),
            ('{"a": 1}', "any", {"a": 1}),
            ("plain", "any", "plain"),
        ],
    )
    def test_conversions(self, text: str, type_name: str, expected: Any) -> None:
        """Each type converts command-line text the documented way."""
        assert coerce_text(text, type_name) == expected

    @pytest.mark.parametrize(
        ("text", "type_name"),
        [
            ("1.5", "integer"),
            ("x", "number"),
            ("{}", "array"),
            ("[]", "object"),
            ("5 s", "duration"),
        ],
    )
    def test_bad_text(self, text: str, type_name: str) -> None:
        """Text that does not convert raises ValueError."""
        with pytest.raises(ValueError, match=r"expected|invalid duration"):
            coerce_text(text, type_name)

    def test_booleans_are_not_integers(self) -> None:
        """true is not an integer or a number, although Python says bool is an int."""
        assert type_error(True, "integer") == "expected integer, got boolean"
        assert type_error(True, "number") == "expected number, got boolean"
        assert type_error(3, "number") is None
