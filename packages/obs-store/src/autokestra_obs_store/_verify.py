"""Verification of an execution's audit trail: hash chain and state-machine invariants.

obs-store reads the table itself and recomputes each link with the schema's own
``audit_digest``, so it needs neither obs-audit nor the engine. The first problem found, in
event order, is reported; an intact trail gives ``None``.

    rows = conn.execute("SELECT id, event_type, timestamp, metadata, prev_hash, hash ...")
    violation = find_violation(execution_id, State.SUCCESS, rows)

The implied-state model: CREATED puts the execution in PENDING; STARTED moves PENDING to
RUNNING; STATE_CHANGE moves ``from_state`` to ``to_state``; COMPLETED implies SUCCESS, FAILED
and TIMEOUT imply FAILED (a workflow timeout ends FAILED, DESIGN.md §5), CANCELLED implies
CANCELLED. A finished execution without any event had its trail removed by retention (whole,
never in part) and passes; a live one without CREATED does not. A STATE_CHANGE that restates
the transition the previous event implied (an engine may record both ``STARTED`` and
``PENDING -> RUNNING``) is not a second transition.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from autokestra_obs_schema import (
    TERMINAL_EVENT_TYPES,
    TERMINAL_STATES,
    AuditEventType,
    State,
    audit_digest,
)

from ._inspect_model import Violation

_STATES = frozenset(State)
#: The state each terminal event leaves the execution in.
_TERMINAL_IMPLIES = {
    AuditEventType.COMPLETED: State.SUCCESS,
    AuditEventType.FAILED: State.FAILED,
    AuditEventType.TIMEOUT: State.FAILED,
    AuditEventType.CANCELLED: State.CANCELLED,
}


def _check_chain(execution_id: str, rows: list[tuple[Any, ...]]) -> Violation | None:
    expected_prev: str | None = None
    for event_id, event_type, timestamp, metadata, prev_hash, stored_hash in rows:
        if prev_hash != expected_prev:
            if expected_prev is None:
                message = (
                    f"Audit event #{event_id} links to a predecessor that is missing "
                    "(the first event of the chain was deleted)"
                )
            else:
                message = (
                    f"Audit event #{event_id} does not link to the event before it "
                    "(an event was deleted or reordered)"
                )
            return Violation("chain", event_id, message)
        digest = audit_digest(prev_hash, execution_id, event_type, timestamp, metadata)
        if digest != stored_hash:
            return Violation(
                "chain",
                event_id,
                f"Audit event #{event_id} ({event_type}) was modified: its hash does not match "
                "its content",
            )
        expected_prev = stored_hash
    return None


def _transition(
    event_id: int, event_type: str, metadata: dict[str, Any], state: str
) -> tuple[str, str] | Violation:
    """The (from, to) transition an event implies from ``state``, or why it cannot."""
    if event_type == AuditEventType.CREATED:
        return Violation("transition", event_id, f"Audit event #{event_id}: CREATED recorded twice")
    if event_type == AuditEventType.STARTED:
        return (state, State.RUNNING)
    if event_type == AuditEventType.STATE_CHANGE:
        source, target = metadata.get("from_state"), metadata.get("to_state")
        if source not in _STATES or target not in _STATES:
            return Violation(
                "transition",
                event_id,
                f"Audit event #{event_id}: STATE_CHANGE without a valid from_state/to_state",
            )
        return (str(source), str(target))
    return (state, _TERMINAL_IMPLIES[AuditEventType(event_type)])


def _check_terminal(
    event_id: int, event_type: str, terminal_id: int | None, restatement: bool
) -> Violation | None:
    """A second terminal event, or a new transition after the terminal one, is a violation."""
    if event_type in TERMINAL_EVENT_TYPES:
        if terminal_id is None:
            return None
        return Violation(
            "terminal",
            event_id,
            f"Audit event #{event_id}: a second terminal event ({event_type}) after "
            f"event #{terminal_id}",
        )
    if terminal_id is not None and not restatement:
        return Violation(
            "terminal",
            event_id,
            f"Audit event #{event_id}: {event_type} after the terminal event #{terminal_id}",
        )
    return None


def _check_step(
    event_id: int, event_type: str, step: tuple[str, str], state: str
) -> Violation | None:
    """A transition must start from the current state and lead somewhere else."""
    source, target = step
    if source != state:
        return Violation(
            "transition",
            event_id,
            f"Audit event #{event_id}: {event_type} from {source}, but the execution was {state}",
        )
    if state in TERMINAL_STATES or source == target:
        return Violation(
            "transition",
            event_id,
            f"Audit event #{event_id}: illegal transition {source} -> {target}",
        )
    return None


def _check_end(
    state_now: str, implied: str, terminal_id: int | None, last_id: int
) -> Violation | None:
    """A finished execution has its terminal event, and its state is the one implied."""
    if state_now in TERMINAL_STATES and terminal_id is None:
        return Violation(
            "terminal",
            None,
            f"The execution is {state_now} but has no terminal audit event "
            "(COMPLETED, FAILED, CANCELLED or TIMEOUT)",
        )
    if implied != state_now:
        return Violation(
            "state",
            last_id,
            f"The execution is {state_now} but its last audit event implies {implied}",
        )
    return None


# One return per rule of the trail's grammar, checked in order: the first broken rule is the
# violation reported.
def _check_sequence(  # noqa: PLR0911
    state_now: str, rows: list[tuple[Any, ...]]
) -> Violation | None:
    if not rows:
        # Retention removes a finished execution's trail whole, once all of it is older than
        # the cutoff (obs-store's _retention.py): nothing is left to check, and nothing is
        # wrong. A live execution always has its CREATED event (written with its row).
        if state_now in TERMINAL_STATES:
            return None
        return Violation("first_event", None, "No audit events: CREATED is missing")
    first_id, first_type = rows[0][0], rows[0][1]
    if first_type != AuditEventType.CREATED:
        return Violation(
            "first_event", first_id, f"Audit event #{first_id} is {first_type}, not CREATED"
        )
    state: str = State.PENDING
    previous: tuple[str, str] = ("", State.PENDING)
    terminal_id: int | None = None
    for event_id, event_type, _, metadata_text, _, _ in rows[1:]:
        step = _transition(event_id, event_type, json.loads(metadata_text), state)
        if isinstance(step, Violation):
            return step
        restatement = step == previous or (
            event_type != AuditEventType.STATE_CHANGE and state == step[1] == previous[1]
        )
        problem = _check_terminal(event_id, event_type, terminal_id, restatement)
        if problem is not None:
            return problem
        if event_type in TERMINAL_EVENT_TYPES:
            terminal_id = event_id
        if not restatement:
            problem = _check_step(event_id, event_type, step, state)
            if problem is not None:
                return problem
            state = step[1]
        previous = step
    return _check_end(state_now, state, terminal_id, rows[-1][0])


def find_violation(
    execution_id: str, state: str, rows: Iterable[tuple[Any, ...]]
) -> Violation | None:
    """Return the first violation of an execution's audit trail, or None.

    Args:
        execution_id: the execution the rows belong to (part of every digest).
        state: the execution's current state (``executions.state``).
        rows: ``(id, event_type, timestamp, metadata, prev_hash, hash)`` in id order, with
            metadata as the stored JSON text.
    """
    ordered = list(rows)
    return _check_chain(execution_id, ordered) or _check_sequence(state, ordered)
