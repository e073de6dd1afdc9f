"""The console-script entry point: answers ``workflow --version`` before importing the CLI.

Everything else goes to the click application in ``_main`` (click, and what each command
imports on first use). A bare ``--version`` is the only fast path: it is what scripts and
package managers call to probe the installation, and it needs nothing but a constant.

    from autokestra_obs_cli import main
    main()   # reads sys.argv
"""

from __future__ import annotations

import sys

from ._version import VERSION


def main() -> None:
    """Run the ``workflow`` command (console scripts ``workflow`` and ``autokestra``)."""
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(f"workflow, version {VERSION}\n")
        sys.stdout.flush()
        return
    from ._main import cli

    cli.main(prog_name="workflow")
