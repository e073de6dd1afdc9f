"""core/shell.run: replace this process with `/bin/sh -c <command>`.

The outputs file is written before the exec ({"exit_code": 0}); a non-zero exit fails the
attempt anyway, and its code is in the attempt's error. exec keeps the process count (and
the cost per task) at one process plus what the command starts.
"""

import json
import os
import signal
import sys


def main() -> None:
    inputs = json.load(sys.stdin)
    command = inputs.get("command")
    if not isinstance(command, str) or not command:
        sys.stderr.write("core/shell.run: input 'command' must be a non-empty string\n")
        sys.exit(2)
    env = dict(os.environ)
    for key, value in (inputs.get("env") or {}).items():
        env[str(key)] = value if isinstance(value, str) else json.dumps(value)
    workdir = os.environ.get("AUTOKESTRA_WORKDIR") or os.getcwd()
    cwd = inputs.get("cwd")
    target = os.path.join(workdir, cwd) if cwd else workdir
    try:
        os.chdir(target)
    except OSError as exc:
        sys.stderr.write(f"core/shell.run: cannot enter {target}: {exc.strerror}\n")
        sys.exit(2)
    with open(os.environ["AUTOKESTRA_OUTPUTS"], "w", encoding="utf-8") as handle:
        json.dump({"exit_code": 0}, handle)
    sys.stdout.flush()
    sys.stderr.flush()
    # Python ignores SIGPIPE and SIGXFSZ, and exec keeps ignored signals: give the command
    # the defaults a shell expects, or `producer | head` would leave the producer looping.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    os.execve("/bin/sh", ["/bin/sh", "-c", command], env)


main()
