"""End to end: the CLI prints stored workflow sources as they are, because they hold no secret.

The engine masks a ``secret: true`` input's literal value in the workflow source before it
stores it, and a value given with ``--input`` is never in the source at all. So
``execution list --json`` and ``inspect --json`` print the stored source unchanged (the CLI
has no masker of its own); this test proves neither value reaches them or any database file.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from e2e import WORKFLOW

from autokestra_obs_schema import SECRET_MASK, open_reader

pytestmark = pytest.mark.integration

PLUGINS = Path(__file__).parents[1] / "examples" / "plugins"
QUOTED = "Qu0ted-L1teral-Tok"
PLAIN = "Pla1n-L1teral-Tok"
BLOCK = "Bl0ck-L1teral-Tok"
GIVEN = "G1ven-By-Input-Tok"

# Three literal forms of a `secret: true` plugin input, and one given by --input.
SOURCE = f"""
id: stored-sources
inputs:
  k: {{type: string, required: true}}
tasks:
  - id: quoted
    type: acme/text.redact-check
    inputs: {{text: hello, token: "{QUOTED}"}}
  - id: plain
    type: acme/text.redact-check
    inputs:
      text: hello
      token: {PLAIN}
  - id: block
    type: acme/text.redact-check
    inputs:
      text: hello
      token: |
        {BLOCK}
  - id: given
    type: acme/text.redact-check
    inputs: {{text: hello, token: "{{{{ inputs.k }}}}"}}
"""


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `workflow --db <tmp>/ak.db ARGS`."""
    return subprocess.run(
        [WORKFLOW, "--db", str(tmp_path / "ak.db"), *args],
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestStoredSources:
    def test_no_secret_input_value_is_stored_or_printed(self, tmp_path: Path) -> None:
        """Literal (quoted, plain, block) and --input values: absent from db files and JSON."""
        path = tmp_path / "flow.yaml"
        path.write_text(SOURCE)
        assert cli(tmp_path, "db", "migrate").returncode == 0
        # A reader snapshot held open keeps every written frame in the WAL until we look.
        holder = open_reader(tmp_path / "ak.db")
        holder.execute("BEGIN")
        holder.execute("SELECT count(*) FROM executions").fetchall()
        try:
            run = cli(
                tmp_path, "run", str(path), "--plugin-path", str(PLUGINS), "--input", f"k={GIVEN}"
            )
            files = {p.name: p.read_bytes() for p in tmp_path.glob("ak.db*")}
        finally:
            holder.execute("COMMIT")
            holder.close()
        assert run.returncode == 0, run.stderr
        eid = run.stdout.split()[1]
        listed = cli(tmp_path, "execution", "list", "--json")
        inspected = cli(tmp_path, "execution", "inspect", eid, "--json")
        assert listed.returncode == 0 and inspected.returncode == 0
        printed = {"list": listed.stdout, "inspect": inspected.stdout}
        for secret in (QUOTED, PLAIN, BLOCK, GIVEN):
            for name, text in printed.items():
                assert secret not in text, (name, secret)
            for name, data in files.items():
                assert secret.encode() not in data, (name, secret)
        # The source is still there, masked, and both commands print the same stored text.
        (execution,) = json.loads(listed.stdout)
        source = execution["workflow_source"]
        assert source == json.loads(inspected.stdout)["execution"]["workflow_source"]
        assert source.count(SECRET_MASK) >= 3
        assert "{{ inputs.k }}" in source
