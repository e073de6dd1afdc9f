"""Click parameter types shared by every command, so a bound is written once.

Every count a user types ends up bound to a SQLite INTEGER (64-bit signed) or used as a size:
a number beyond that is a usage error naming the option (exit 2), never an "int too big to
convert" from deep inside (DESIGN.md §6.15).

    @click.option("--limit", type=COUNT, default=20)
"""

from __future__ import annotations

import click

#: The largest value SQLite stores in an INTEGER column or binds as a parameter.
SQLITE_INT_MAX = 2**63 - 1

#: A positive count (``--limit``, ``--tail``, ``--steps``, ``--attempt``, byte sizes).
COUNT = click.IntRange(min=1, max=SQLITE_INT_MAX)
