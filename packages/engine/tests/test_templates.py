"""Templates: lookups only, JSON types kept for whole-string templates, secrets masked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autokestra_engine import (
    ActionSpec,
    InputDecl,
    SecretStore,
    TaskSpec,
    TemplateContext,
    TemplateError,
    resolve_task_inputs,
)
from autokestra_engine.language._templates import iter_templates, parse_reference, resolve_value
from autokestra_obs_schema import SECRET_MASK

ACTION = ActionSpec(
    namespace="test",
    plugin="probe",
    action="run",
    version="1",
    plugin_dir=Path("/nonexistent"),
    command=("true",),
    inputs={
        "value": InputDecl(type="any"),
        "token": InputDecl(type="string", secret=True),
        "level": InputDecl(type="string", default="INFO"),
        "hidden_default": InputDecl(type="string", default="pa55word", secret=True),
    },
)

CTX = TemplateContext(
    inputs={"count": 3, "who": "ops", "obj": {"a": [10, 20]}, "flag": True},
    task_outputs={"fetch-users": {"body": {"items": ["x", "y"]}, "status": 200}},
    secrets=SecretStore({"API_TOKEN": "tok-123456", "DB_PASS": "pw-987654"}),
    execution_id="0193-exec",
)


def resolve(value: Any) -> tuple[Any, Any, set[str]]:
    return resolve_value(value, CTX)


class TestTypes:
    @pytest.mark.parametrize(
        ("template", "expected"),
        [
            ("{{ inputs.count }}", 3),
            ("{{inputs.flag}}", True),
            ("{{ inputs.obj }}", {"a": [10, 20]}),
            ("{{ inputs.obj.a.1 }}", 20),
            ("{{ tasks.fetch-users.outputs.body.items }}", ["x", "y"]),
            ("{{ tasks.fetch-users.outputs.status }}", 200),
            ("{{ execution.id }}", "0193-exec"),
        ],
    )
    def test_whole_string_template_keeps_the_json_type(self, template: str, expected: Any) -> None:
        """A value that is exactly one template becomes the referenced value, type included."""
        assert resolve(template)[0] == expected

    @pytest.mark.parametrize(
        ("template", "expected"),
        [
            ("n={{ inputs.count }}", "n=3"),
            ("{{ inputs.who }}-{{ inputs.count }}", "ops-3"),
            ("obj: {{ inputs.obj }}", 'obj: {"a":[10,20]}'),
            ("ok={{ inputs.flag }}", "ok=true"),
            ("id {{ execution.id }}", "id 0193-exec"),
        ],
    )
    def test_embedded_template_is_stringified(self, template: str, expected: str) -> None:
        """A template inside a longer string is replaced by text: strings as is, others JSON."""
        assert resolve(template)[0] == expected

    def test_lists_and_mappings_are_walked(self) -> None:
        """Templates inside nested lists and mappings are resolved; keys are left alone."""
        value = {"{{ inputs.who }}": ["{{ inputs.count }}", {"deep": "x{{ inputs.who }}"}]}
        assert resolve(value)[0] == {"{{ inputs.who }}": [3, {"deep": "xops"}]}

    def test_resolved_values_are_not_resolved_again(self) -> None:
        """An input value that looks like a template is data, never evaluated a second time."""
        ctx = TemplateContext({"x": "{{ secrets.API_TOKEN }}"}, {}, CTX.secrets, "e")
        assert resolve_value("{{ inputs.x }}", ctx)[0] == "{{ secrets.API_TOKEN }}"

    @given(st.text().filter(lambda s: "{{" not in s))
    def test_text_without_templates_is_unchanged(self, text: str) -> None:
        """Any text without '{{' resolves to itself."""
        assert resolve(text) == (text, text, set())

    @given(st.text())
    def test_input_text_is_inserted_verbatim(self, text: str) -> None:
        """Whatever an input holds is inserted as is (no escaping, no evaluation)."""
        ctx = TemplateContext({"x": text}, {}, SecretStore(), "e")
        assert resolve_value("<{{ inputs.x }}>", ctx)[0] == f"<{text}>"


class TestSecrets:
    def test_whole_secret_is_masked(self) -> None:
        """The real value goes to the plugin, the mask to storage, the value to the redactor."""
        real, masked, used = resolve("{{ secrets.API_TOKEN }}")
        assert (real, masked, used) == ("tok-123456", SECRET_MASK, {"tok-123456"})

    def test_embedded_secret_is_masked_in_place(self) -> None:
        """Only the secret part of a longer string is masked."""
        real, masked, used = resolve("Bearer {{ secrets.API_TOKEN }} for {{ inputs.who }}")
        assert real == "Bearer tok-123456 for ops"
        assert masked == f"Bearer {SECRET_MASK} for ops"
        assert used == {"tok-123456"}

    def test_declared_secret_input_is_masked_even_when_literal(self) -> None:
        """An input the action marks secret is masked whatever its source."""
        task = TaskSpec(id="t", type="test/probe.run", inputs={"token": "literal-value"})
        resolved = resolve_task_inputs(task, ACTION, CTX)
        assert resolved.values["token"] == "literal-value"
        assert resolved.masked["token"] == SECRET_MASK
        assert "literal-value" in resolved.secret_values

    def test_defaults_are_filled_and_secret_defaults_masked(self) -> None:
        """Declared defaults fill missing inputs; a secret default is masked too."""
        task = TaskSpec(id="t", type="test/probe.run", inputs={"value": "{{ secrets.DB_PASS }}"})
        resolved = resolve_task_inputs(task, ACTION, CTX)
        assert resolved.values == {
            "value": "pw-987654",
            "level": "INFO",
            "hidden_default": "pa55word",
        }
        assert resolved.masked == {
            "value": SECRET_MASK,
            "level": "INFO",
            "hidden_default": SECRET_MASK,
        }
        assert resolved.secret_values == {"pw-987654", "pa55word"}


class TestErrors:
    @pytest.mark.parametrize(
        ("template", "fragment"),
        [
            ("{{ inputs.missing }}", "input 'missing' has no value"),
            ("{{ tasks.other.outputs.x }}", "task 'other' has no outputs"),
            ("{{ tasks.fetch-users.outputs.nope }}", "has no output 'nope'"),
            ("{{ inputs.obj.b }}", "no 'b' in the referenced value"),
            ("{{ secrets.NOPE }}", "unknown secret 'NOPE'"),
        ],
    )
    def test_unresolvable_reference_raises(self, template: str, fragment: str) -> None:
        """A reference without a value at run time raises TemplateError naming it."""
        with pytest.raises(TemplateError, match=fragment):
            resolve(template)

    def test_error_names_task_and_input(self) -> None:
        """resolve_task_inputs says which task and input failed."""
        task = TaskSpec(id="t1", type="test/probe.run", inputs={"value": "{{ inputs.zz }}"})
        with pytest.raises(TemplateError, match="task 't1' input 'value'"):
            resolve_task_inputs(task, ACTION, CTX)

    @pytest.mark.parametrize(
        "expression",
        [
            "",
            "inputs",
            "tasks.a.result.x",
            "secrets",
            "secrets.A.B",
            "execution.name",
            "1+1",
            "inputs.x | upper",
            "__class__.__mro__",
        ],
    )
    def test_only_four_reference_forms_parse(self, expression: str) -> None:
        """Anything but inputs/tasks/secrets/execution lookups is rejected, never evaluated."""
        with pytest.raises(ValueError, match="template"):
            parse_reference(expression)

    def test_iter_templates_reports_paths(self) -> None:
        """iter_templates yields each template with its path, malformed ones as messages."""
        found = list(iter_templates({"a": ["{{ inputs.x }}", "{{ nope }}"]}, "tasks[0].inputs"))
        assert found[0][0] == "tasks[0].inputs.a[0]"
        assert found[1][0] == "tasks[0].inputs.a[1]"
        assert isinstance(found[1][1], str)
