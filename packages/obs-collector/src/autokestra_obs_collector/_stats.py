"""Counters a collector exposes for health reporting and the benchmark.

stats = collector.stats()
print(stats.written, stats.dropped, stats.commit_p99_ms)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def percentile(sorted_samples: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted samples; 0.0 when there are none."""
    if not sorted_samples:
        return 0.0
    index = min(len(sorted_samples) - 1, int(len(sorted_samples) * fraction))
    return sorted_samples[index]


@dataclass(frozen=True, slots=True)
class CollectorStats:
    """Counters of a collector since it started.

    Attributes:
        logged: entries accepted into the buffer.
        written: entries committed to the database.
        dropped: entries lost (buffer full while the database failed, refused by a
            constraint, logged after shutdown, or left at a shutdown deadline).
        pending: entries buffered or in flight now.
        transactions: committed log transactions.
        failures: failed write attempts (each retried).
        commit_p50_ms: median duration of recent log transactions, BEGIN to COMMIT.
        commit_p99_ms: 99th percentile of the same.
    """

    logged: int
    written: int
    dropped: int
    pending: int
    transactions: int
    failures: int
    commit_p50_ms: float
    commit_p99_ms: float
