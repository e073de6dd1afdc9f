#!/usr/bin/env python3
"""acme/text plugin: the Autokestra plugin protocol with nothing but the standard library.

Protocol: inputs arrive as one JSON object on stdin; every stdout line is an INFO log entry,
every stderr line a WARN one, and a `::debug::` / `::info::` / `::warn::` / `::error::`
prefix picks the level; outputs are one JSON object written to the file named by the
AUTOKESTRA_OUTPUTS environment variable; exit 0 means success.
"""

import collections
import json
import os
import re
import sys


def write_outputs(outputs: dict) -> None:
    with open(os.environ["AUTOKESTRA_OUTPUTS"], "w", encoding="utf-8") as handle:
        json.dump(outputs, handle)


def stats(inputs: dict) -> int:
    text = inputs["text"]
    top = int(inputs.get("top", 3))
    words = re.findall(r"[\w']+", text.lower())
    common = collections.Counter(words).most_common(top)
    print(f"measuring {len(text)} characters")
    print(
        f"::debug::task {os.environ.get('AUTOKESTRA_TASK_ID')} attempt "
        f"{os.environ.get('AUTOKESTRA_ATTEMPT')}"
    )
    for word, count in common:
        print(f"{word}: {count}")
    write_outputs(
        {
            "lines": len(text.splitlines()),
            "words": len(words),
            "chars": len(text),
            "top_words": [[w, c] for w, c in common],
        }
    )
    return 0


def redact_check(inputs: dict) -> int:
    found = inputs["token"] in inputs["text"]
    # Printing the token is safe to try: the engine redacts secret inputs in every log line.
    print(f"checked for token {inputs['token']}")
    write_outputs({"found": found})
    if found:
        print("::error::the text contains the token", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    action = sys.argv[1] if len(sys.argv) > 1 else ""
    inputs = json.load(sys.stdin)
    if action == "stats":
        return stats(inputs)
    if action == "redact-check":
        return redact_check(inputs)
    print(f"unknown action {action!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
