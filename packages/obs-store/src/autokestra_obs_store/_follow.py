"""Following a running execution's log: what exists, then new entries as they commit.

The follower reads, in one statement, the execution's state and the highest log id ``H``
visible. Every id at or below ``H`` is already committed: SQLite lets one writer at a time
commit, and an AUTOINCREMENT id is assigned inside its write transaction, so a transaction
that commits later always holds larger ids. The follower prints the existing entries
``id <= H`` in ``(timestamp, id)`` order (filters and ``tail`` applied), then polls for
``H_prev < id <= H_new`` in id order on ``idx_logs_cursor``. Nothing is skipped or repeated,
whatever the interleaving of writers, and an idle poll is one index seek.

It ends once a poll that started at least one interval after the execution was first seen
terminal finds nothing new (an execution already terminal at the start ends at once). It
raises :class:`EngineGone` when an idle poll finds the engine running the execution gone
(DESIGN.md §6.4): nothing would ever end the execution until another engine starts.

    follower = LogFollower(store, execution_id, LogFilter(), poll_s=0.1)
    for record in follower:
        print(record.message)
    print(follower.final_state)  # State.SUCCESS
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator

from autokestra_obs_schema import TERMINAL_STATES

from ._liveness import engine_gone
from ._log_filter import LogFilter
from ._log_sql import PAGE_SIZE, Shape
from ._log_store import LogRecord, LogStore, _Query, id_ordered_family

#: Seconds between polls (CLI.md: every 100 ms).
DEFAULT_POLL_S = 0.1


class LogFollower:
    """An iterator over an execution's log that waits for new entries until it ends.

    Args:
        store: the store to read with.
        execution_id: the execution to follow.
        filters: the same filters as a plain query; ``tail`` applies to the entries that
            exist at the start, ``since`` and the others to every entry.
        poll_s: seconds between polls that found nothing new.
        stop: when set, the iterator ends at the next poll (``final_state`` stays ``None``).
        on_idle: called before each wait for new entries (a CLI flushes its output there, so
            a line never waits in a buffer while the follower sleeps).

    Raises:
        ExecutionNotFound: at construction, when no execution has this id.
        EngineGone: while iterating, when the engine running the execution is gone.
    """

    def __init__(
        self,
        store: LogStore,
        execution_id: str,
        filters: LogFilter | None = None,
        *,
        poll_s: float = DEFAULT_POLL_S,
        stop: threading.Event | None = None,
        on_idle: Callable[[], object] | None = None,
    ) -> None:
        self._store = store
        self._on_idle = on_idle
        self._execution_id = execution_id
        self._filters = filters if filters is not None else LogFilter()
        self._poll_s = poll_s
        self._stop = stop
        state, self._cursor = store.state_and_high_water(execution_id)
        self._state = state
        #: The terminal state the execution ended in, once the iterator is exhausted.
        self.final_state: str | None = None
        #: Number of polls made after the existing entries were read (for tests/benchmarks).
        self.polls = 0

    def __iter__(self) -> Iterator[LogRecord]:
        return self._run()

    def _run(self) -> Iterator[LogRecord]:
        yield from self._store.existing(self._execution_id, self._filters, self._cursor)
        # The state seen *before* a read: only a read that starts after the execution was seen
        # terminal can prove that nothing more will come.
        seen_terminal = self._state in TERMINAL_STATES
        while True:
            if self._stop is not None and self._stop.is_set():
                return
            advanced = yield from self.poll()
            if seen_terminal and not advanced:
                self.final_state = self._state
                return
            if not seen_terminal and self._state in TERMINAL_STATES:
                # Seen ending just now: wait one interval before the confirming read, so a
                # batch its writer commits just after the state change (a queued execution
                # cancelled from the CLI logs that after) is still printed.
                seen_terminal = True
                self._sleep()
            elif not advanced:
                # Everything committed is printed: if the engine is gone, nothing more will
                # come and nobody will end the execution until an engine starts (§6.4).
                gone = engine_gone(self._store.connection, self._execution_id)
                if gone is not None:
                    raise gone
                self._sleep()

    def poll(self) -> Generator[LogRecord, None, bool]:
        """One poll: yield the matching entries committed since the previous poll.

        Returns (as the generator's value) whether any entry was committed since, matching
        or not.
        """
        self.polls += 1
        state, high = self._store.state_and_high_water(self._execution_id)
        self._state = state
        if high <= self._cursor:
            return False
        family = id_ordered_family(self._filters)
        query = _Query(self._execution_id, self._filters, high, since=True, family=family)
        conn = self._store.connection
        cursor = self._cursor
        while True:
            page = query.fetch(conn, Shape.AFTER_ID, cursor, PAGE_SIZE)
            yield from page
            if len(page) < PAGE_SIZE:
                break
            cursor = page[-1].id
        # Everything up to `high` is read, matching or not: the next poll starts there, so
        # entries a filter rejects are never scanned twice.
        self._cursor = high
        return True

    def _sleep(self) -> None:
        if self._on_idle is not None:
            self._on_idle()
        if self._stop is not None:
            self._stop.wait(self._poll_s)
        else:
            time.sleep(self._poll_s)
