"""core/log.emit: print the message with a ::level:: prefix, echo it as the output."""

import json
import os
import sys

# The level names are spelled here rather than imported from autokestra_obs_schema.LogLevel:
# this script runs as a plugin child process under `python -I -S` (no site-packages, so the
# package is not even importable), and a task's start-up cost is one bare interpreter. The
# manifest's `enum` is checked against LogLevel by test_plugins, so the lists cannot drift.
LEVELS = ("DEBUG", "INFO", "WARN", "ERROR")


def main() -> None:
    inputs = json.load(sys.stdin)
    message = inputs.get("message")
    if not isinstance(message, str):
        message = json.dumps(message)
    level = str(inputs.get("level") or "INFO").upper()
    if level not in LEVELS:
        sys.stderr.write(f"core/log.emit: level must be one of {', '.join(LEVELS)}\n")
        sys.exit(2)
    prefix = f"::{level.lower()}::"
    for line in message.split("\n") or [""]:
        sys.stdout.write(prefix + line + "\n")
    sys.stdout.flush()
    with open(os.environ["AUTOKESTRA_OUTPUTS"], "w", encoding="utf-8") as handle:
        json.dump({"message": message}, handle)


main()
