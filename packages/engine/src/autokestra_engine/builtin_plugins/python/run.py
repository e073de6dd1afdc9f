"""core/python.run: exec the given source as __main__; write {} if it wrote no outputs."""

import json
import os
import sys
import traceback


def finish() -> None:
    path = os.environ["AUTOKESTRA_OUTPUTS"]
    if not os.path.exists(path):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("{}")


def main() -> None:
    inputs = json.load(sys.stdin)
    script = inputs.get("script")
    if not isinstance(script, str):
        sys.stderr.write("core/python.run: input 'script' must be a string\n")
        sys.exit(2)
    args = inputs.get("args") or []
    sys.argv = ["<script>", *[a if isinstance(a, str) else json.dumps(a) for a in args]]
    # The user's script runs from the workflow's folder, like core/shell.run.
    os.chdir(os.environ.get("AUTOKESTRA_WORKDIR") or os.getcwd())
    code = compile(script, "<script>", "exec")
    namespace = {"__name__": "__main__", "inputs": inputs}
    try:
        exec(code, namespace)  # running user code is the point
    except SystemExit as exc:
        if exc.code in (None, 0):
            finish()
        raise
    except BaseException as exc:
        # Show the user's frames only: this wrapper's own frames are noise in the log.
        tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
        traceback.print_exception(type(exc), exc, tb)
        sys.exit(1)
    finish()


main()
