"""core/wait.sleep: sleep for a duration of the workflow grammar, report the time slept."""

import json
import os
import re
import sys
import time

UNITS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
PART = re.compile(r"([0-9]+)(ms|d|h|m|s)")


def parse(text: str) -> int:
    # The engine validated the duration already; this only needs to read it.
    parts = PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(text)
    return sum(int(n) * UNITS[u] for n, u in parts)


def main() -> None:
    inputs = json.load(sys.stdin)
    try:
        wanted_ms = parse(str(inputs.get("duration", "")))
    except ValueError:
        sys.stderr.write(f"core/wait.sleep: invalid duration {inputs.get('duration')!r}\n")
        sys.exit(2)
    started = time.monotonic()
    time.sleep(wanted_ms / 1000)
    slept_ms = int((time.monotonic() - started) * 1000)
    with open(os.environ["AUTOKESTRA_OUTPUTS"], "w", encoding="utf-8") as handle:
        json.dump({"slept_ms": slept_ms}, handle)


main()
