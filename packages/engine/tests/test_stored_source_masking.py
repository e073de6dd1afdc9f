"""Stored sources are masked at creation: the proof the CLI's regex masker can go.

A ``secret: true`` task input given a value in the workflow file (however YAML quotes it) or
through a workflow input: the execution's stored ``workflow_source`` and ``inputs`` never
hold the value, neither as written nor once the stored YAML is parsed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from autokestra_engine import EngineConfig, EngineRuntime, parse_workflow
from autokestra_obs_schema import SECRET_MASK, open_reader

VALUE = "Lit-S3cret: value's #1"

MANIFEST = """
namespace: test
name: vault
version: 1.0.0
actions:
  use:
    command: ["{python}", "-c", "pass"]
    inputs:
      token: {type: any, secret: true}
      note: {type: string}
"""

#: The same value, written every way YAML allows for a string scalar.
QUOTINGS = {
    "double-quoted": json.dumps(VALUE),
    "double-quoted-escapes": '"Lit-S3cret\\x3A value\\u0027s #1"',
    "single-quoted": "'" + VALUE.replace("'", "''") + "'",
    "literal-block": "|-\n        " + VALUE,
    "folded-block": ">-\n        " + VALUE,
    "tagged": "!!str " + json.dumps(VALUE),
}


def _scalars(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    elif value is not None:
        yield str(value)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[EngineRuntime]:
    plugin = tmp_path / "plugins" / "vault"
    plugin.mkdir(parents=True)
    (plugin / "plugin.yaml").write_text(MANIFEST)
    config = EngineConfig(db_path=tmp_path / "autokestra.db", plugin_paths=[tmp_path / "plugins"])
    with EngineRuntime(config, env={}) as opened:
        yield opened


def _stored(runtime: EngineRuntime, execution_id: str) -> tuple[str, str]:
    conn = open_reader(runtime.config.db_path)
    try:
        ((source, inputs),) = conn.execute(
            "SELECT workflow_source, inputs FROM executions WHERE execution_id = ?",
            (execution_id,),
        ).fetchall()
    finally:
        conn.close()
    return str(source), str(inputs)


def _assert_hidden(source: str, inputs: str) -> None:
    assert VALUE not in source
    assert VALUE not in inputs
    assert VALUE not in set(_scalars(yaml.safe_load(source)))
    assert VALUE not in set(_scalars(json.loads(inputs)))


class TestLiteralInTheFile:
    @pytest.mark.parametrize("written", QUOTINGS.values(), ids=list(QUOTINGS))
    def test_literal_is_masked_however_quoted(self, runtime: EngineRuntime, written: str) -> None:
        """The stored source shows the mask where the file gave the secret input's value."""
        text = f"""
id: literal
tasks:
  - id: use
    type: test/vault.use
    inputs:
      note: public
      token: {written}
"""
        workflow = parse_workflow(text, runtime.registry)
        assert workflow.tasks[0].inputs["token"] == VALUE  # the YAML does say VALUE
        eid = runtime.engine.create_execution(workflow, {})
        source, inputs = _stored(runtime, eid)
        _assert_hidden(source, inputs)
        stored = yaml.safe_load(source)
        assert stored["tasks"][0]["inputs"] == {"note": "public", "token": SECRET_MASK}

    def test_anchor_and_alias_are_masked(self, runtime: EngineRuntime) -> None:
        """A value shared through an anchor is masked at its anchor (the alias follows)."""
        text = f"""
id: anchored
x-token: &tok {json.dumps(VALUE)}
tasks:
  - id: use
    type: test/vault.use
    inputs: {{note: public, token: *tok}}
"""
        eid = runtime.engine.create_execution(parse_workflow(text, runtime.registry), {})
        _assert_hidden(*_stored(runtime, eid))


class TestValueThroughAnInput:
    FLOW = """
id: through-input
inputs:
  k: {type: string, required: true}
tasks:
  - id: use
    type: test/vault.use
    inputs: {note: "{{ inputs.k }} is not secret here", token: "{{ inputs.k }}"}
"""

    def test_given_input_is_masked(self, runtime: EngineRuntime) -> None:
        """An input read by a secret task input is stored as the mask, as a whole."""
        workflow = parse_workflow(self.FLOW, runtime.registry)
        eid = runtime.engine.create_execution(workflow, {"k": VALUE})
        source, inputs = _stored(runtime, eid)
        _assert_hidden(source, inputs)
        assert json.loads(inputs) == {"k": SECRET_MASK}

    @pytest.mark.parametrize("written", QUOTINGS.values(), ids=list(QUOTINGS))
    def test_default_in_the_file_is_masked(self, runtime: EngineRuntime, written: str) -> None:
        """An input's default that feeds a secret input is masked in the stored source too."""
        text = f"""
id: through-default
inputs:
  k:
    type: string
    default: {written}
tasks:
  - id: use
    type: test/vault.use
    inputs: {{note: public, token: "{{{{ inputs.k }}}}"}}
"""
        eid = runtime.engine.create_execution(parse_workflow(text, runtime.registry), {})
        _assert_hidden(*_stored(runtime, eid))
