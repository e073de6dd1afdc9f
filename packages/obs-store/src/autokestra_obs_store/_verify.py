"""Verification of an execution's audit trail: hash chain and state-machine invariants.

obs-store reads the table itself and recomputes each link with the schema's own
``audit_digest``, so it needs neither obs-audit nor the engine. The first problem found, in
event order, is reported; an intact trail gives ``None``.

    rows = conn.execute("SELECT id, event_type, timestamp, metadata, prev_hash, hash ...")
    violation = find_violation(execution_id, State.SUCCESS, rows)

With the database's audit key (DESIGN.md §6.8) the check also authenticates content: each
event's ``keyed_hash`` (HMAC-SHA256 of what the plain digest covers), the chain head stored
with the execution row (event count and newest keyed hash, keyed), and that an execution
created after keying began is keyed from its first event. Without the key only the links
and plain digests are checked: anyone can recompute those, so the verdict says so.

    verdict = verify_trail(execution_id, trail, key=load_audit_key(db_path), now=now_ms())
    verdict.ok, verdict.keyed, verdict.status

The implied-state model: CREATED puts the execution in PENDING; STARTED moves PENDING to
RUNNING; STATE_CHANGE moves ``from_state`` to ``to_state``; COMPLETED implies SUCCESS, FAILED
and TIMEOUT imply FAILED (a workflow timeout ends FAILED, DESIGN.md §5), CANCELLED implies
CANCELLED. A finished execution without any event had its trail removed by retention (whole,
never in part) and passes once it ended before the retention window; one that ended within
the window (retention cannot have removed it yet), or a live one, does not. A STATE_CHANGE
that restates the transition the previous event implied (an engine may record both ``STARTED`` and
``PENDING -> RUNNING``) is not a second transition. A STATE_CHANGE whose metadata names a
``task_id`` records a task run's transition (a task ended SKIPPED): it is chained like any
event and must name valid states and come before the terminal event, but it does not move the
execution's implied state.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from autokestra_obs_schema import (
    TERMINAL_EVENT_TYPES,
    TERMINAL_STATES,
    AuditEventType,
    AuditKey,
    State,
    audit_digest,
    iso_from_ms,
    keyed_audit_digest,
    keyed_chain_head,
    uuid7_ms,
)

from ._inspect_model import Violation

#: What a verdict says when content was authenticated with the audit key.
KEYED_STATUS = "keyed: content authenticated with the audit key"
#: What a verdict says without the key (DESIGN.md §6.8 wording).
UNKEYED_STATUS = "unkeyed: links checked, content not authenticated"
DAY_MS = 86_400_000

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
    for event_id, event_type, timestamp, metadata, prev_hash, stored_hash, *_ in rows:
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


def _check_task_event(
    event_id: int, metadata: dict[str, Any], terminal_id: int | None
) -> Violation | None:
    """A task run's transition: valid states, a task id, before the execution's end."""
    task_id = metadata.get("task_id")
    source, target = metadata.get("from_state"), metadata.get("to_state")
    named = isinstance(task_id, str) and task_id != ""
    if not named or source not in _STATES or target not in _STATES:
        return Violation(
            "transition",
            event_id,
            f"Audit event #{event_id}: task STATE_CHANGE without a valid task_id/from_state/"
            "to_state",
        )
    if terminal_id is not None:
        return Violation(
            "terminal",
            event_id,
            f"Audit event #{event_id}: STATE_CHANGE of task {task_id} after the terminal "
            f"event #{terminal_id}",
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
        # the cutoff (obs-store's _retention.py): _check_missing_trail decided whether that
        # can be what happened. A live execution always has its CREATED event.
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
    for event_id, event_type, _, metadata_text, *_ in rows[1:]:
        metadata = json.loads(metadata_text)
        if event_type == AuditEventType.STATE_CHANGE and "task_id" in metadata:
            problem = _check_task_event(event_id, metadata, terminal_id)
            if problem is not None:
                return problem
            continue
        step = _transition(event_id, event_type, metadata, state)
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


@dataclass(frozen=True, slots=True)
class AuditTrail:
    """What verification reads about one execution, in one read transaction.

    Attributes:
        state: ``executions.state``.
        created_at: ``executions.created_at``.
        ended_at: ``executions.ended_at`` (``updated_at`` stands in when it is missing).
        event_count: ``executions.audit_event_count`` (``None``: never keyed).
        head: ``executions.audit_head`` (``None``: never keyed).
        rows: ``(id, event_type, timestamp, metadata, prev_hash, hash, keyed_hash)`` by id.
        key_record: the ``audit_key`` row ``(key_id, keyed_since, check_hash)``, if any.
    """

    state: str
    created_at: int
    ended_at: int | None
    event_count: int | None
    head: str | None
    rows: Sequence[tuple[Any, ...]]
    key_record: tuple[str, int, str] | None


@dataclass(frozen=True, slots=True)
class AuditVerdict:
    """The result of verifying one execution's audit trail.

    Attributes:
        violation: the first problem found, ``None`` when the trail is intact.
        keyed: content was authenticated with the audit key (else only links were checked).
        events: how many audit events the trail has.
    """

    violation: Violation | None
    keyed: bool
    events: int

    @property
    def ok(self) -> bool:
        """True when no violation was found."""
        return self.violation is None

    @property
    def status(self) -> str:
        """``keyed: ...`` or ``unkeyed: links checked, content not authenticated``."""
        return KEYED_STATUS if self.keyed else UNKEYED_STATUS


def _check_missing_trail(
    execution_id: str, trail: AuditTrail, now: int, retention_days: int
) -> Violation | None:
    """A trail retention cannot have removed yet, but is missing, is always a violation."""
    if trail.rows or trail.state not in TERMINAL_STATES:
        return None
    ended = trail.ended_at if trail.ended_at is not None else trail.created_at
    if ended >= now - retention_days * DAY_MS:
        return Violation(
            "missing_trail",
            None,
            f"The audit trail of execution {execution_id} is missing, but it ended at "
            f"{iso_from_ms(ended)}, within the {retention_days}-day retention window: "
            "it was deleted",
        )
    return None


def _check_key_record(key: AuditKey, record: tuple[str, int, str]) -> Violation | None:
    key_id, keyed_since, check = record
    if key_id != key.key_id:
        return Violation(
            "key",
            None,
            f"The audit key {key.path} does not belong to this database (key {key.key_id}; "
            f"the trails were keyed with {key_id})",
        )
    if check != key.record_check(keyed_since):
        return Violation("key", None, "The database's audit key record was edited")
    return None


def _check_keyed(execution_id: str, trail: AuditTrail, key: AuditKey) -> Violation | None:
    """Authenticate every keyed event and the chain head; find rewrites without the key."""
    record = trail.key_record
    has_keyed = any(row[6] is not None for row in trail.rows) or trail.head is not None
    if record is None:
        if has_keyed:
            return Violation("key", None, "The database's audit key record was removed")
        return None  # keying never began in this database: nothing is keyed to check
    problem = _check_key_record(key, record)
    if problem is not None:
        return problem
    keyed_since = record[1]
    born = uuid7_ms(execution_id)
    # An execution created after keying began is keyed from its first event: one that
    # looks unkeyed had its keyed hashes stripped (created_at alone could be edited, the
    # time inside a UUIDv7 id cannot without it becoming another execution).
    expected = trail.created_at >= keyed_since or (born is not None and born >= keyed_since)
    keyed_seen = False
    for event_id, event_type, timestamp, metadata, prev_hash, _, keyed_hash in trail.rows:
        if keyed_hash is None:
            if keyed_seen or expected:
                return Violation(
                    "chain",
                    event_id,
                    f"Audit event #{event_id} ({event_type}) has no keyed hash: it was "
                    "rewritten without the audit key",
                )
            continue
        keyed_seen = True
        digest = keyed_audit_digest(
            key.secret, prev_hash, execution_id, event_type, timestamp, metadata
        )
        if digest != keyed_hash:
            return Violation(
                "chain",
                event_id,
                f"Audit event #{event_id} ({event_type}) was modified: its keyed hash does "
                "not match its content",
            )
    return _check_head(execution_id, trail, key, expected or keyed_seen)


def _check_head(
    execution_id: str, trail: AuditTrail, key: AuditKey, keyed: bool
) -> Violation | None:
    if not keyed or not trail.rows:
        return None  # a missing trail was judged by _check_missing_trail
    if trail.head is None or trail.event_count is None:
        return Violation("head", None, "The chain head recorded with the execution was removed")
    last = trail.rows[-1]
    expected = keyed_chain_head(
        key.secret, execution_id, trail.event_count, int(last[2]), str(last[6])
    )
    if trail.event_count > len(trail.rows):
        missing = trail.event_count - len(trail.rows)
        return Violation(
            "head",
            None,
            f"{missing} newest audit events were deleted: the execution row records "
            f"{trail.event_count} events, the trail has {len(trail.rows)}",
        )
    if trail.event_count != len(trail.rows) or trail.head != expected:
        return Violation(
            "head",
            int(last[0]),
            "The newest audit events do not match the chain head recorded with the "
            "execution (events were deleted, added or rewritten)",
        )
    return None


def verify_trail(
    execution_id: str,
    trail: AuditTrail,
    *,
    key: AuditKey | None,
    now: int,
    retention_days: int,
) -> AuditVerdict:
    """Verify one execution's audit trail; keyed when ``key`` is given.

    Args:
        execution_id: the execution.
        trail: what the database holds about it (see :class:`AuditTrail`).
        key: the database's audit key, or ``None`` to check links only.
        now: the current Unix ms (the retention window ends here).
        retention_days: the retention window; a trail missing although its execution
            ended within it is a violation.
    """
    rows = list(trail.rows)
    # Links first (their message says where an event went missing), then what only the key
    # can show, then the state machine (an edited event type is "modified", not "illegal").
    violation = (
        _check_missing_trail(execution_id, trail, now, retention_days)
        or _check_chain(execution_id, rows)
        or (_check_keyed(execution_id, trail, key) if key is not None else None)
        or _check_sequence(trail.state, rows)
    )
    keyed = key is not None and trail.key_record is not None
    return AuditVerdict(violation=violation, keyed=keyed, events=len(rows))
