"""The state machine of executions and task runs: one explicit transition table.

The states themselves are the vocabulary's (:class:`autokestra_obs_schema.State`); this
module only says which moves between them are allowed. Both executions and task runs move
through PENDING, RUNNING, WAITING (with a reason code), SUCCESS, FAILED and CANCELLED.
Terminal states are final; asking for the transition an object already made (same state,
same reason) is a no-op, so a replayed step after a crash or a duplicate cancel is harmless;
anything else not in the table raises.

    >>> check_transition(State.PENDING, State.RUNNING)
    True
    >>> check_transition(State.RUNNING, State.RUNNING)
    False
"""

from __future__ import annotations

from autokestra_obs_schema import AutokestraError, State

#: The one transition table, shared by executions and task runs. A task run waits (WAITING,
#: reason RETRY_BACKOFF) between attempts; an execution is never WAITING today, but the table
#: allows it so a future "waiting for a slot" state needs no schema or audit change. PENDING
#: may end FAILED directly (an execution whose engine died before starting it: ENGINE_LOST)
#: and CANCELLED directly (cancelled while queued, or dependants of a failed task).
TRANSITIONS: dict[State, frozenset[State]] = {
    State.PENDING: frozenset({State.RUNNING, State.FAILED, State.CANCELLED}),
    State.RUNNING: frozenset({State.WAITING, State.SUCCESS, State.FAILED, State.CANCELLED}),
    State.WAITING: frozenset({State.RUNNING, State.FAILED, State.CANCELLED}),
    State.SUCCESS: frozenset(),
    State.FAILED: frozenset(),
    State.CANCELLED: frozenset(),
}


class IllegalTransition(AutokestraError):
    """A transition the table does not allow (for example out of a terminal state)."""

    def __init__(self, subject: str, current: State, target: State) -> None:
        self.subject = subject
        self.current = current
        self.target = target
        super().__init__(f"Illegal transition of {subject}: {current} -> {target}")


def check_transition(current: State | str, target: State | str, *, subject: str = "") -> bool:
    """Decide whether moving from ``current`` to ``target`` must be applied.

    Args:
        current: the state stored now.
        target: the state asked for.
        subject: what is moving (``execution <id>``, ``task <id>``), for the error message.

    Returns:
        ``True`` when the transition must be applied, ``False`` when it is a replay of the
        state already reached (a no-op: nothing to write, no audit event).

    Raises:
        IllegalTransition: the table does not allow ``current -> target``.
    """
    here, there = State(current), State(target)
    if here is there:
        return False
    if there not in TRANSITIONS[here]:
        raise IllegalTransition(subject or "object", here, there)
    return True
