"""Secret task inputs given in clear (a literal, an input): secrets from the execution's start.

A ``secret: true`` plugin input may get its value from the workflow file or from a workflow
input rather than from ``{{ secrets.* }}``. That value is in the redactor before any task
runs, the stored source and inputs hold it masked, and a queued run refuses it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from autokestra_engine import (
    Engine,
    EngineConfig,
    PluginExecutor,
    PluginRegistry,
    RegistryError,
    SecretNotQueueable,
    SecretStore,
    WorkflowRegistry,
    parse_workflow,
    secret_input_values,
)
from autokestra_engine.language._secret_analysis import mask_scalars
from autokestra_obs_collector import LogCollector
from autokestra_obs_schema import SECRET_MASK, State, open_reader, open_writer

LITERAL = "Lit3ral-Tok3n-Qw9"
GIVEN = "InpVal-Secr3t-77"
DEFAULT = "Def4ult-Key-551"

MANIFEST = f"""
namespace: test
name: probe
version: 1.0.0
actions:
  run:
    command: ["{{python}}", "./probe.py"]
    inputs:
      token: {{type: any, secret: true}}
      seen: {{type: string}}
      key: {{type: string, secret: true, default: {DEFAULT}}}
"""

PROBE = """
import json, os, sys
inputs = json.load(sys.stdin)
if inputs.get("seen"):
    with open(inputs["seen"], "w") as out:
        json.dump(inputs.get("token"), out)
print("probe token", inputs.get("token"), "key", inputs.get("key"))
with open(os.environ["AUTOKESTRA_OUTPUTS"], "w") as out:
    json.dump({}, out)
"""


class Harness:
    """An engine over a fresh database, with the probe plugin (secret inputs) discovered."""

    def __init__(self, tmp_path: Path) -> None:
        plugin = tmp_path / "plugins" / "probe"
        plugin.mkdir(parents=True)
        (plugin / "plugin.yaml").write_text(MANIFEST)
        (plugin / "probe.py").write_text(PROBE)
        self.tmp = tmp_path
        self.db = tmp_path / "db" / "autokestra.db"
        self.writer = open_writer(self.db)
        self.collector = LogCollector(self.writer, max_age_s=0.05)
        self.registry = PluginRegistry.discover([tmp_path / "plugins"])
        config = dataclasses.replace(EngineConfig(db_path=self.db), max_concurrent_tasks=2)
        self.engine = Engine(
            config,
            writer=self.writer,
            collector=self.collector,
            registry=self.registry,
            secrets=SecretStore(),
            executor=PluginExecutor(self.registry, workdir=tmp_path, grace_ms=500),
        )

    def workflow(self, text: str) -> Any:
        return parse_workflow(text, self.registry, filename="flow.yaml")

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = open_reader(self.db)
        try:
            return list(conn.execute(sql, params).fetchall())
        finally:
            conn.close()

    def messages(self, eid: str) -> list[str]:
        return [
            str(m)
            for (m,) in self.rows(
                "SELECT message FROM execution_logs WHERE execution_id = ? ORDER BY id", (eid,)
            )
        ]

    def close(self) -> None:
        self.engine.close()
        self.collector.shutdown()
        self.writer.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.close()


def literal_flow(seen: Path) -> str:
    # `early` prints the literal before `use` resolves its inputs (it needs `early`).
    return f"""
id: literal
tasks:
  - id: early
    type: core/shell.run
    inputs: {{command: "echo early {LITERAL}"}}
  - id: use
    type: test/probe.run
    needs: [early]
    inputs: {{token: "{LITERAL}", seen: "{seen}"}}
"""


INPUT_FLOW = """
id: given
inputs:
  k: {type: string, required: true}
tasks:
  - id: early
    type: core/shell.run
    inputs: {command: "echo early $X", env: {X: "{{ inputs.k }}"}}
  - id: use
    type: test/probe.run
    needs: [early]
    inputs: {token: "Bearer {{ inputs.k }}", seen: "SEEN"}
"""


class TestForegroundRun:
    def test_literal_is_masked_in_storage_and_redacted_from_the_start(
        self, harness: Harness
    ) -> None:
        seen = harness.tmp / "seen.json"
        eid = harness.engine.create_execution(harness.workflow(literal_flow(seen)), {})
        ((source,),) = harness.rows(
            "SELECT workflow_source FROM executions WHERE execution_id = ?", (eid,)
        )
        assert LITERAL not in source
        assert f'token: "{SECRET_MASK}"' in source
        assert harness.engine.run(eid).state is State.SUCCESS
        # The plugin got the real value, not the stored mask.
        assert json.loads(seen.read_text()) == LITERAL
        messages = harness.messages(eid)
        assert f"early {SECRET_MASK}" in messages
        assert f"probe token {SECRET_MASK} key {SECRET_MASK}" in messages
        assert not any(LITERAL in m for m in messages)

    def test_input_feeding_a_secret_input_is_masked_and_redacted(self, harness: Harness) -> None:
        seen = harness.tmp / "seen.json"
        flow = INPUT_FLOW.replace("SEEN", str(seen))
        eid = harness.engine.create_execution(harness.workflow(flow), {"k": GIVEN})
        ((inputs, source),) = harness.rows(
            "SELECT inputs, workflow_source FROM executions WHERE execution_id = ?", (eid,)
        )
        assert json.loads(inputs) == {"k": SECRET_MASK}
        assert source == flow
        assert harness.engine.run(eid).state is State.SUCCESS
        assert json.loads(seen.read_text()) == f"Bearer {GIVEN}"
        messages = harness.messages(eid)
        assert f"early {SECRET_MASK}" in messages
        assert not any(GIVEN in m for m in messages)

    def test_secret_default_of_an_action_is_redacted_from_the_start(self, harness: Harness) -> None:
        flow = f"""
id: defaults
tasks:
  - id: early
    type: core/shell.run
    inputs: {{command: "echo early {DEFAULT}"}}
  - id: use
    type: test/probe.run
    needs: [early]
"""
        eid = harness.engine.create_execution(harness.workflow(flow), {})
        assert harness.engine.run(eid).state is State.SUCCESS
        messages = harness.messages(eid)
        assert f"early {SECRET_MASK}" in messages
        assert not any(DEFAULT in m for m in messages)

    def test_queued_execution_redacts_secret_defaults_from_the_start(
        self, harness: Harness
    ) -> None:
        """A detached run (what a server runs) gets the action defaults in its redactor too."""
        # The shell computes the default's text: written in the file, it could not be queued.
        head, number = DEFAULT.rsplit("-", 1)
        flow = f"""
id: queued
tasks:
  - id: early
    type: core/shell.run
    inputs: {{command: "echo early {head}-$(({number} - 1 + 1))"}}
  - id: use
    type: test/probe.run
    needs: [early]
"""
        eid = harness.engine.create_execution(harness.workflow(flow), {}, detached=True)
        assert harness.engine.run(eid).state is State.SUCCESS
        assert f"early {SECRET_MASK}" in harness.messages(eid)


class TestQueuedRunRefused:
    def test_literal_secret_cannot_be_queued(self, harness: Harness) -> None:
        workflow = harness.workflow(literal_flow(harness.tmp / "seen.json"))
        with pytest.raises(SecretNotQueueable) as caught:
            harness.engine.create_execution(workflow, {}, detached=True)
        assert str(caught.value) == (
            "flow.yaml: tasks[1].inputs.token: a literal value for a secret input cannot be"
            " queued; use {{ secrets.NAME }}"
        )
        assert harness.rows("SELECT count(*) FROM executions") == [(0,)]

    def test_input_feeding_a_secret_cannot_be_queued(self, harness: Harness) -> None:
        workflow = harness.workflow(INPUT_FLOW)
        with pytest.raises(SecretNotQueueable, match=r"tasks\[1\]\.inputs\.token: .*'k'"):
            harness.engine.create_execution(workflow, {"k": GIVEN}, detached=True)
        assert harness.rows("SELECT count(*) FROM executions") == [(0,)]

    def test_secret_template_can_still_be_queued(self, harness: Harness) -> None:
        workflow = harness.workflow(
            "id: ok\ntasks:\n  - id: use\n    type: test/probe.run\n"
            "    inputs: {token: '{{ secrets.TOKEN }}'}\n"
        )
        harness.engine.secrets = SecretStore({"TOKEN": "from-the-store-1"})
        eid = harness.engine.create_execution(workflow, {}, detached=True)
        ((source,),) = harness.rows(
            "SELECT workflow_source FROM executions WHERE execution_id = ?", (eid,)
        )
        assert source == workflow.source

    def test_secret_value_written_elsewhere_cannot_be_queued(self, harness: Harness) -> None:
        """Stored masked, the server would run another file; stored clear, it would leak."""
        workflow = harness.workflow(
            "id: echo\ntasks:\n  - id: use\n    type: test/probe.run\n"
            "    inputs: {token: '{{ secrets.TOKEN }}'}\n"
            "  - id: say\n    type: core/log.emit\n    inputs: {message: from-the-store-1}\n"
        )
        harness.engine.secrets = SecretStore({"TOKEN": "from-the-store-1"})
        with pytest.raises(SecretNotQueueable, match="workflow file: holds the value of a secret"):
            harness.engine.create_execution(workflow, {}, detached=True)
        assert harness.rows("SELECT count(*) FROM executions") == [(0,)]

    def test_apply_refuses_a_literal_secret(self, harness: Harness) -> None:
        workflow = harness.workflow(
            "id: nightly\ntrigger: {type: cron, schedule: '0 3 * * *'}\n"
            "inputs:\n  k: {type: string, default: some-default-value}\n"
            "tasks:\n  - id: use\n    type: test/probe.run\n"
            f"    inputs: {{token: '{LITERAL}'}}\n"
            "  - id: again\n    type: test/probe.run\n"
            "    inputs: {token: '{{ inputs.k }}'}\n"
        )
        with pytest.raises(RegistryError) as caught:
            WorkflowRegistry(harness.writer).apply(workflow)
        message = str(caught.value)
        assert "tasks[0].inputs.token: a literal value for a secret input" in message
        assert "tasks[1].inputs.token: the value of input 'k'" in message
        assert "{{ secrets.NAME }}" in message
        assert harness.rows("SELECT count(*) FROM workflows") == [(0,)]


class TestStoredSourceMasking:
    @pytest.mark.parametrize(
        "written",
        [
            "plainTok3n-value",
            "'sq Tok3n''s value'",
            '"dq \\"Tok3n\\" \\x41 value"',
            "abc",  # shorter than the redactor's substring minimum
            "|\n        line-one-Tok3n\n        line-two-Tok3n",
            ">-\n        folded Tok3n\n        value",
        ],
    )
    def test_a_literal_is_masked_however_it_is_written(
        self, harness: Harness, written: str
    ) -> None:
        flow = (
            "id: forms\ntasks:\n  - id: use\n    type: test/probe.run\n"
            f"    inputs:\n      token: {written}\n      seen: SEEN\n"
        ).replace("SEEN", str(harness.tmp / "seen.json"))
        workflow = harness.workflow(flow)
        literal = workflow.tasks[0].inputs["token"]
        eid = harness.engine.create_execution(workflow, {})
        ((source,),) = harness.rows(
            "SELECT workflow_source FROM executions WHERE execution_id = ?", (eid,)
        )
        assert yaml.safe_load(source)["tasks"][0]["inputs"]["token"] == SECRET_MASK
        assert literal not in source
        assert harness.engine.run(eid).state is State.SUCCESS
        assert json.loads((harness.tmp / "seen.json").read_text()) == literal

    def test_an_anchored_literal_keeps_its_anchor(self) -> None:
        source = "x-tok: &tok 'it''s-a-secret'\nuse: *tok\nother: kept\n"
        masked = mask_scalars(source, {"it's-a-secret"}, SECRET_MASK)
        assert masked == f'x-tok: &tok "{SECRET_MASK}"\nuse: *tok\nother: kept\n'


class TestSecretInputValues:
    def test_paths_and_values(self, harness: Harness) -> None:
        workflow = harness.workflow(
            "id: many\ninputs:\n  obj: {type: object}\n  n: {type: integer}\n"
            "tasks:\n  - id: a\n    type: test/probe.run\n"
            "    inputs: {token: [lit-one-value, {deep: 12345}, '{{ inputs.obj.pw }}']}\n"
            "  - id: b\n    type: test/probe.run\n"
            "    inputs: {token: 'x-{{ inputs.n }}', seen: not-a-secret}\n"
        )
        found = secret_input_values(workflow, {"obj": {"pw": "deep-pass", "user": "u"}, "n": 7})
        assert found.literal_paths == (
            "tasks[0].inputs.token[0]",
            "tasks[0].inputs.token[1].deep",
        )
        assert found.input_paths == (
            ("tasks[0].inputs.token[2]", "obj"),
            ("tasks[1].inputs.token", "n"),
        )
        assert found.values == {"lit-one-value", "12345", "deep-pass", "7"}
        assert found.input_names == {"obj", "n"}

    def test_inputs_without_value_and_secret_templates_are_not_in_clear(
        self, harness: Harness
    ) -> None:
        workflow = harness.workflow(
            "id: none\ninputs:\n  k: {type: string}\n"
            "tasks:\n  - id: a\n    type: test/probe.run\n"
            "    inputs: {token: '{{ inputs.k }}{{ secrets.X }}', seen: lit-not-secret}\n"
        )
        found = secret_input_values(workflow, {})
        assert not found
        assert found.values == frozenset()
