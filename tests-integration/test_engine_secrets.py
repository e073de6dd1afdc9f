"""End to end: a secret reaches its plugin and nothing else, in clear.

The secret is printed to stdout and stderr, written to outputs, put in a failing task's error
and in the workflow's task inputs; afterwards neither the database files (the WAL included:
a reader holds a snapshot open so the WAL cannot be checkpointed away) nor any CLI output
holds it.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest
from e2e import WORKFLOW

from autokestra_obs_schema import open_reader

pytestmark = pytest.mark.integration

SECRET = "pa55-w0rd-Zq8xK3"

LEAKY = """
id: leaky
tasks:
  - id: use
    type: core/shell.run
    inputs:
      env: {TOKEN: "{{ secrets.DB_PASSWORD }}"}
      command: |
        echo "stdout sees $TOKEN"
        echo "stderr sees $TOKEN" >&2
        echo "::error::error line $TOKEN"
        printf '%s' "$TOKEN" | base64
  - id: keep
    type: core/python.run
    needs: [use]
    inputs:
      args: ["{{ secrets.DB_PASSWORD }}"]
      script: |
        import json, os, sys
        with open(os.environ["AUTOKESTRA_OUTPUTS"], "w") as out:
            json.dump({"copy": sys.argv[1], "nested": {"list": [sys.argv[1]]}}, out)
  - id: explode
    type: core/python.run
    needs: [keep]
    inputs:
      args: ["{{ secrets.DB_PASSWORD }}"]
      script: |
        import sys
        raise RuntimeError("connection refused for password " + sys.argv[1])
"""


def cli(
    tmp_path: Path, *args: str, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `workflow --db <tmp>/ak.db ARGS` with the secret in the environment."""
    return subprocess.run(
        [WORKFLOW, "--db", str(tmp_path / "ak.db"), *args],
        cwd=tmp_path,
        env={
            **os.environ,
            "NO_COLOR": "1",
            "AUTOKESTRA_SECRET_DB_PASSWORD": SECRET,
            **(extra or {}),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def forms(secret: str) -> list[bytes]:
    """The clear secret and its base64 form, as bytes to look for."""
    return [secret.encode(), base64.b64encode(secret.encode()).rstrip(b"=")]


class TestSecrets:
    def test_secret_never_stored_or_printed(self, tmp_path: Path) -> None:
        """No database file and no CLI output holds the secret, though the plugins used it."""
        path = tmp_path / "leaky.yaml"
        path.write_text(LEAKY)
        migrate = cli(tmp_path, "db", "migrate")
        assert migrate.returncode == 0, migrate.stderr
        # A reader snapshot held open keeps every frame in the WAL until we look at it.
        holder = open_reader(tmp_path / "ak.db")
        holder.execute("BEGIN")
        holder.execute("SELECT count(*) FROM executions").fetchall()
        try:
            run = cli(tmp_path, "run", str(path))
            wal = (tmp_path / "ak.db-wal").read_bytes()
        finally:
            holder.execute("COMMIT")
            holder.close()
        assert run.returncode == 1  # `explode` fails on purpose
        eid = run.stdout.split()[1]
        assert len(wal) > 0
        outputs = [
            run.stdout,
            run.stderr,
            cli(tmp_path, "execution", "logs", eid).stdout,
            cli(tmp_path, "execution", "logs", eid, "--json").stdout,
            cli(tmp_path, "execution", "inspect", eid, "--json").stdout,
            cli(tmp_path, "execution", "inspect", eid, "--show-inputs").stdout,
            cli(tmp_path, "execution", "list", "--json").stdout,
        ]
        for text in outputs:
            for form in forms(SECRET):
                assert form.decode() not in text
        files = [p for p in tmp_path.iterdir() if p.name.startswith("ak.db")]
        for file in [*files, None]:
            data = wal if file is None else file.read_bytes()
            for form in forms(SECRET):
                assert form not in data, file
        # The secret did reach the plugins: their lines are there, masked.
        conn = open_reader(tmp_path / "ak.db")
        try:
            messages = [str(m) for (m,) in conn.execute("SELECT message FROM execution_logs")]
            inputs = [
                i for (i,) in conn.execute("SELECT inputs FROM task_runs WHERE inputs IS NOT NULL")
            ]
            outputs_row = conn.execute(
                "SELECT outputs FROM task_runs WHERE task_id = 'keep'"
            ).fetchall()
            error = conn.execute("SELECT error FROM task_runs WHERE task_id = 'explode'").fetchall()
        finally:
            conn.close()
        assert "stdout sees ***SECRET***" in messages
        assert "stderr sees ***SECRET***" in messages
        assert "error line ***SECRET***" in messages
        assert all("***SECRET***" in str(i) for i in inputs)
        assert "***SECRET***" in str(outputs_row[0][0])
        assert "***SECRET***" in str(error[0][0])

    def test_short_secret_warns(self, tmp_path: Path) -> None:
        """A secret shorter than 4 characters is run, with a WARN about weak masking."""
        path = tmp_path / "short.yaml"
        path.write_text(
            "id: short\ntasks:\n  - id: x\n    type: core/log.emit\n"
            "    inputs: {message: 'pin {{ secrets.PIN }}'}\n"
        )
        run = cli(tmp_path, "run", str(path), extra={"AUTOKESTRA_SECRET_PIN": "42"})
        assert run.returncode == 0, run.stderr
        conn = open_reader(tmp_path / "ak.db")
        try:
            warns = conn.execute(
                "SELECT message FROM execution_logs WHERE level = 'WARN' AND source = 'scheduler'"
            ).fetchall()
        finally:
            conn.close()
        assert any("Secret PIN is shorter than 4 characters" in str(m) for (m,) in warns)

    def test_unknown_secret_fails_before_running(self, tmp_path: Path) -> None:
        """A referenced secret without a value is an error; no execution is created."""
        path = tmp_path / "missing.yaml"
        path.write_text(
            "id: missing\ntasks:\n  - id: x\n    type: core/log.emit\n"
            "    inputs: {message: '{{ secrets.NOPE }}'}\n"
        )
        run = cli(tmp_path, "run", str(path))
        assert run.returncode == 1
        assert "unknown secret 'NOPE'" in run.stderr
        assert "AUTOKESTRA_SECRET_NOPE" in run.stderr
        assert "Execution" not in run.stdout

    def test_declared_secret_input_is_masked_without_a_secret_template(
        self, tmp_path: Path
    ) -> None:
        """A `secret: true` plugin input given literally is masked and redacted downstream.

        Runs the example third-party plugin (examples/plugins/acme-text, no Autokestra import),
        whose redact-check action prints its `token` input. The value is written in the
        workflow file, so the stored workflow source is the one place that holds it.
        """
        token = "Lit3ral-Tok3n-Qw9"
        path = tmp_path / "literal.yaml"
        path.write_text(
            f"""
id: literal
tasks:
  - id: check
    type: acme/text.redact-check
    inputs: {{text: "hello there", token: "{token}"}}
  - id: echo
    type: core/shell.run
    needs: [check]
    inputs: {{command: "echo again {token}; echo {token} >&2; exit 3"}}
"""
        )
        plugins = Path(__file__).parents[1] / "examples" / "plugins"
        run = cli(tmp_path, "run", str(path), "--plugin-path", str(plugins))
        assert run.returncode == 1, run.stderr  # `echo` fails on purpose
        eid = run.stdout.split()[1]
        for text in (
            run.stdout,
            run.stderr,
            cli(tmp_path, "execution", "logs", eid, "--json").stdout,
            cli(tmp_path, "execution", "inspect", eid, "--show-inputs").stdout,
        ):
            assert token not in text
        conn = open_reader(tmp_path / "ak.db")
        try:
            for query in (
                "SELECT count(*) FROM execution_logs"
                " WHERE instr(message || coalesce(metadata, ''), ?1) > 0",
                "SELECT count(*) FROM task_runs WHERE instr(coalesce(inputs, '')"
                " || coalesce(outputs, '') || coalesce(error, ''), ?1) > 0",
                "SELECT count(*) FROM task_attempts WHERE instr(coalesce(error, ''), ?1) > 0",
                "SELECT count(*) FROM execution_audit_events WHERE instr(metadata, ?1) > 0",
            ):
                assert conn.execute(query, (token,)).fetchall() == [(0,)], query
            messages = [m for (m,) in conn.execute("SELECT message FROM execution_logs")]
            inputs = {
                str(task): str(text)
                for task, text in conn.execute("SELECT task_id, inputs FROM task_runs")
            }
        finally:
            conn.close()
        assert "checked for token ***SECRET***" in messages
        assert "again ***SECRET***" in messages
        assert '"token":"***SECRET***"' in inputs["check"]
        assert "***SECRET***" in inputs["echo"]

    def test_literal_secret_input_is_masked_in_json_workflow_source(self, tmp_path: Path) -> None:
        """`execution list --json` and `inspect --json` mask a literal secret input's value.

        The engine stores the source with the value masked, and the commands print the
        stored source as it is (test_cli_stored_sources.py covers every literal form).
        """
        token = "Lit3ral-Tok3n-Qw9"
        path = tmp_path / "literal.yaml"
        path.write_text(
            "id: literal\ntasks:\n  - id: check\n    type: acme/text.redact-check\n"
            f"    inputs: {{text: hello, token: '{token}'}}\n"
        )
        plugins = Path(__file__).parents[1] / "examples" / "plugins"
        run = cli(tmp_path, "run", str(path), "--plugin-path", str(plugins))
        assert run.returncode == 0, run.stderr
        eid = run.stdout.split()[1]
        listed = cli(tmp_path, "execution", "list", "--json").stdout
        inspected = cli(tmp_path, "execution", "inspect", eid, "--json").stdout
        for text in (listed, inspected):
            assert token not in text
            assert "***SECRET***" in text


LITERAL_TOKEN = "Lit3ral-Tok3n-Qw9"
GIVEN_TOKEN = "InpVal-Secr3t-77"
PLUGINS = Path(__file__).parents[1] / "examples" / "plugins"

# `early` prints both values before the secret inputs are resolved (their tasks need it).
IN_CLEAR = f"""
id: in-clear
inputs:
  k: {{type: string, required: true}}
tasks:
  - id: early
    type: core/shell.run
    inputs:
      command: echo "early {LITERAL_TOKEN} and $X"
      env: {{X: "{{{{ inputs.k }}}}"}}
  - id: literal
    type: acme/text.redact-check
    needs: [early]
    inputs: {{text: hello, token: {LITERAL_TOKEN}}}
  - id: given
    type: acme/text.redact-check
    needs: [early]
    inputs: {{text: hello, token: "Bearer {{{{ inputs.k }}}}"}}
"""


class TestSecretInputsInClear:
    """A secret: true input given by the file or by --input is stored and printed masked."""

    def test_foreground_run_stores_neither_value(self, tmp_path: Path) -> None:
        path = tmp_path / "in-clear.yaml"
        path.write_text(IN_CLEAR)
        migrate = cli(tmp_path, "db", "migrate")
        assert migrate.returncode == 0, migrate.stderr
        holder = open_reader(tmp_path / "ak.db")
        holder.execute("BEGIN")
        holder.execute("SELECT count(*) FROM executions").fetchall()
        try:
            run = cli(
                tmp_path,
                "run",
                str(path),
                "--plugin-path",
                str(PLUGINS),
                "--input",
                f"k={GIVEN_TOKEN}",
            )
            raw = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("ak.db")}
        finally:
            holder.execute("COMMIT")
            holder.close()
        assert run.returncode == 0, run.stderr
        # The engine's storage reserve (zeros, DESIGN.md §6.2) is scanned like the rest.
        assert set(raw) == {"ak.db", "ak.db-wal", "ak.db-shm", "ak.db-reserve"}
        assert len(raw["ak.db-wal"]) > 0
        eid = run.stdout.split()[1]
        outputs = [
            run.stdout,
            run.stderr,
            cli(tmp_path, "execution", "list", "--json").stdout,
            cli(tmp_path, "execution", "logs", eid, "--json").stdout,
            cli(tmp_path, "execution", "inspect", eid, "--json").stdout,
            cli(tmp_path, "execution", "inspect", eid, "--show-inputs").stdout,
        ]
        for secret in (LITERAL_TOKEN, GIVEN_TOKEN):
            for text in outputs:
                for form in forms(secret):
                    assert form.decode() not in text
            for name, data in raw.items():
                for form in forms(secret):
                    assert form not in data, (name, form)
        conn = open_reader(tmp_path / "ak.db")
        try:
            ((inputs, source),) = conn.execute(
                "SELECT inputs, workflow_source FROM executions"
            ).fetchall()
            messages = [str(m) for (m,) in conn.execute("SELECT message FROM execution_logs")]
        finally:
            conn.close()
        assert json.loads(str(inputs)) == {"k": "***SECRET***"}
        assert 'token: "***SECRET***"}' in str(source)
        # The task that printed them ran before either secret task resolved its inputs.
        assert "early ***SECRET*** and ***SECRET***" in messages

    def test_detach_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "in-clear.yaml"
        path.write_text(IN_CLEAR)
        run = cli(
            tmp_path,
            "run",
            str(path),
            "--detach",
            "--plugin-path",
            str(PLUGINS),
            "--input",
            f"k={GIVEN_TOKEN}",
        )
        assert run.returncode == 1
        assert run.stdout == ""
        lines = run.stderr.splitlines()
        assert len(lines) == 1, run.stderr
        assert lines[0] == (
            f"Error: {path}: tasks[1].inputs.token: a literal value for a secret input cannot"
            " be queued; use {{ secrets.NAME }}; tasks[2].inputs.token: the value of input 'k'"
            " given to a secret input cannot be queued; use {{ secrets.NAME }}"
        )
        listed = cli(tmp_path, "execution", "list", "--json")
        assert json.loads(listed.stdout) == []

    def test_apply_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "nightly.yaml"
        path.write_text(
            "id: nightly\ntrigger: {type: cron, schedule: '0 3 * * *'}\ntasks:\n"
            "  - id: check\n    type: acme/text.redact-check\n"
            f"    inputs: {{text: hello, token: {LITERAL_TOKEN}}}\n"
        )
        applied = cli(tmp_path, "apply", str(path), "--plugin-path", str(PLUGINS))
        assert applied.returncode == 1
        assert "tasks[0].inputs.token: a literal value for a secret input" in applied.stderr
        assert LITERAL_TOKEN not in applied.stderr
        listed = cli(tmp_path, "list", "--json")
        assert json.loads(listed.stdout) == []
