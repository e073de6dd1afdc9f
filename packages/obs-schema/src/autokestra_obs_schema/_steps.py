"""The schema, as an ordered list of migration steps (the only DDL in the project).

Column names are part of the public contract: ``--json`` output mirrors them (DESIGN.md §2).
A step is never edited once released; a change is a new step.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._vocabulary import AuditEventType, LogLevel, State, sql_list

#: Name of the SQL function the retention code registers on its own connection. The audit
#: table's DELETE trigger calls it, so a connection without it (a plain ``sqlite3`` shell)
#: cannot delete audit rows at all, and retention can delete only rows older than its cutoff.
RETENTION_GUARD_FUNCTION = "autokestra_retention_allows"  # spelled out in AUDIT_EVENTS.up


@dataclass(frozen=True, slots=True)
class MigrationStep:
    """One versioned schema change with its inverse."""

    version: int
    name: str
    up: str
    down: str


# The CHECK lists come from the vocabulary. A released step must not change, so each step
# names the members it was released with; a new member needs a new step.
_STATES = sql_list(
    (State.PENDING, State.RUNNING, State.WAITING, State.SUCCESS, State.FAILED, State.CANCELLED)
)
_LEVELS = sql_list((LogLevel.DEBUG, LogLevel.INFO, LogLevel.WARN, LogLevel.ERROR))
_EVENT_TYPES = sql_list(
    (
        AuditEventType.CREATED,
        AuditEventType.STARTED,
        AuditEventType.STATE_CHANGE,
        AuditEventType.COMPLETED,
        AuditEventType.FAILED,
        AuditEventType.CANCELLED,
        AuditEventType.TIMEOUT,
    )
)

EXECUTIONS_AND_TASKS = MigrationStep(
    version=1,
    name="executions_and_tasks",
    up=f"""
CREATE TABLE executions (
    execution_id        TEXT PRIMARY KEY NOT NULL,
    workflow_id         TEXT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN {_STATES}),
    trigger_type        TEXT NOT NULL DEFAULT 'manual',
    reason_code         TEXT,
    message             TEXT,
    failed_task_id      TEXT,
    created_at          INTEGER NOT NULL,
    started_at          INTEGER,
    ended_at            INTEGER,
    updated_at          INTEGER NOT NULL,
    log_entry_count     INTEGER NOT NULL DEFAULT 0,
    cancel_requested_at INTEGER,
    cancelled_by        TEXT,
    cancel_reason       TEXT,
    inputs              TEXT CHECK (inputs IS NULL OR json_valid(inputs)),
    workflow_source     TEXT
);
CREATE INDEX idx_executions_created ON executions (created_at);
CREATE INDEX idx_executions_workflow ON executions (workflow_id, created_at);
CREATE INDEX idx_executions_state ON executions (state, created_at);

CREATE TABLE task_runs (
    execution_id  TEXT NOT NULL REFERENCES executions (execution_id),
    task_id       TEXT NOT NULL,
    position      INTEGER NOT NULL DEFAULT 0,
    type          TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN {_STATES}),
    reason_code   TEXT,
    needs         TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(needs)),
    attempt_count INTEGER NOT NULL DEFAULT 0,
    inputs        TEXT CHECK (inputs IS NULL OR json_valid(inputs)),
    outputs       TEXT CHECK (outputs IS NULL OR json_valid(outputs)),
    error         TEXT CHECK (error IS NULL OR json_valid(error)),
    created_at    INTEGER NOT NULL,
    queued_at     INTEGER,
    started_at    INTEGER,
    ended_at      INTEGER,
    duration_ms   INTEGER,
    PRIMARY KEY (execution_id, task_id)
);

CREATE TABLE task_attempts (
    execution_id TEXT NOT NULL,
    task_id      TEXT NOT NULL,
    attempt      INTEGER NOT NULL CHECK (attempt >= 1),
    state        TEXT NOT NULL CHECK (state IN {_STATES}),
    reason       TEXT,
    started_at   INTEGER,
    ended_at     INTEGER,
    duration_ms  INTEGER,
    exit_code    INTEGER,
    error        TEXT CHECK (error IS NULL OR json_valid(error)),
    PRIMARY KEY (execution_id, task_id, attempt),
    FOREIGN KEY (execution_id, task_id) REFERENCES task_runs (execution_id, task_id)
);
""",
    down="""
DROP TABLE task_attempts;
DROP TABLE task_runs;
DROP TABLE executions;
""",
)

EXECUTION_LOGS = MigrationStep(
    version=2,
    name="execution_logs",
    up=f"""
CREATE TABLE execution_logs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL REFERENCES executions (execution_id),
    task_id      TEXT,
    attempt      INTEGER,
    timestamp    INTEGER NOT NULL,
    level        TEXT NOT NULL CHECK (level IN {_LEVELS}),
    source       TEXT NOT NULL,
    message      TEXT NOT NULL,
    metadata     TEXT CHECK (metadata IS NULL OR json_valid(metadata))
);
CREATE INDEX idx_logs_execution ON execution_logs (execution_id, timestamp);
CREATE INDEX idx_logs_task ON execution_logs (task_id, timestamp);
-- The follow cursor (execution_id = ? AND id > ?) is a range scan only on this index:
-- idx_logs_execution puts timestamp before the rowid.
CREATE INDEX idx_logs_cursor ON execution_logs (execution_id, id);
""",
    down="""
DROP TABLE execution_logs;
""",
)

_AUDIT_TABLE = f"""
CREATE TABLE execution_audit_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL REFERENCES executions (execution_id),
    event_type   TEXT NOT NULL CHECK (event_type IN {_EVENT_TYPES}),
    timestamp    INTEGER NOT NULL,
    metadata     TEXT NOT NULL CHECK (json_valid(metadata)),
    prev_hash    TEXT,
    hash         TEXT NOT NULL
);
CREATE INDEX idx_audit_execution ON execution_audit_events (execution_id, timestamp);
"""

_AUDIT_TRIGGERS = """
CREATE TRIGGER audit_events_no_update
BEFORE UPDATE ON execution_audit_events
BEGIN
    SELECT RAISE(ABORT, 'execution_audit_events is append-only: UPDATE refused');
END;

-- REPLACE and upserts resolve a conflict by deleting the old row, and that delete fires no
-- trigger on a connection with recursive_triggers off: refuse the insert before it happens.
CREATE TRIGGER audit_events_no_replace
BEFORE INSERT ON execution_audit_events
WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM execution_audit_events WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'execution_audit_events is append-only: REPLACE refused');
END;

CREATE TRIGGER audit_events_delete_guard
BEFORE DELETE ON execution_audit_events
WHEN NOT autokestra_retention_allows(OLD.timestamp)
BEGIN
    SELECT RAISE(ABORT, 'execution_audit_events is append-only: DELETE refused');
END;
"""

AUDIT_EVENTS = MigrationStep(
    version=3,
    name="audit_events",
    up=_AUDIT_TABLE + _AUDIT_TRIGGERS,
    down="""
DROP TRIGGER audit_events_delete_guard;
DROP TRIGGER audit_events_no_replace;
DROP TRIGGER audit_events_no_update;
DROP TABLE execution_audit_events;
""",
)

ENGINE_OWNERSHIP = MigrationStep(
    version=4,
    name="engine_ownership",
    up="""
-- Which engine process runs an execution, so a restarted engine can tell a live owner from a
-- dead one (crash recovery), and which process group each attempt ran in (to kill orphans).
ALTER TABLE executions ADD COLUMN engine_id TEXT;
ALTER TABLE executions ADD COLUMN engine_pid INTEGER;
ALTER TABLE executions ADD COLUMN engine_host TEXT;
ALTER TABLE executions ADD COLUMN heartbeat_at INTEGER;
ALTER TABLE task_attempts ADD COLUMN pid INTEGER;
ALTER TABLE task_attempts ADD COLUMN pgid INTEGER;
CREATE INDEX idx_executions_engine ON executions (engine_id, state);
""",
    down="""
DROP INDEX idx_executions_engine;
ALTER TABLE task_attempts DROP COLUMN pgid;
ALTER TABLE task_attempts DROP COLUMN pid;
ALTER TABLE executions DROP COLUMN heartbeat_at;
ALTER TABLE executions DROP COLUMN engine_host;
ALTER TABLE executions DROP COLUMN engine_pid;
ALTER TABLE executions DROP COLUMN engine_id;
""",
)

WORKFLOW_REGISTRY = MigrationStep(
    version=5,
    name="workflow_registry",
    up="""
-- Workflows registered with `workflow apply`, whose cron triggers the server fires.
CREATE TABLE workflows (
    workflow_id   TEXT PRIMARY KEY NOT NULL,
    source        TEXT NOT NULL,
    source_path   TEXT,
    enabled       INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    trigger_type  TEXT NOT NULL DEFAULT 'manual',
    schedule      TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    last_fired_at INTEGER,
    next_fire_at  INTEGER
);
CREATE INDEX idx_workflows_next_fire ON workflows (enabled, next_fire_at);
""",
    down="""
DROP TABLE workflows;
""",
)

#: The full-text index of ``execution_logs.message`` (``workflow logs search``). An
#: external-content FTS5 table: it stores only the inverted index and reads the text from
#: ``execution_logs`` itself (docs/storage.md, "Full-text index", has the measured sizes).
LOG_SEARCH_INDEX = "execution_logs_fts"

LOG_SEARCH = MigrationStep(
    version=6,
    name="log_search",
    up="""
-- The table holds redacted text only (the collector redacts before it inserts), so the index
-- can never hold a secret. unicode61 folds case (every script) and, with remove_diacritics 2,
-- accents: `Cafe` finds `café`. detail=full keeps token positions (phrase queries need them);
-- columnsize=0 drops per-row token counts, used only by bm25 ranking (hits are ordered by id).
CREATE VIRTUAL TABLE execution_logs_fts USING fts5 (
    message,
    content = 'execution_logs',
    content_rowid = 'id',
    columnsize = 0,
    tokenize = 'unicode61 remove_diacritics 2'
);
-- The triggers keep the index in the transaction of the rows they index: a collector batch
-- and its index entries commit (or roll back) together, and retention's deletes remove them.
CREATE TRIGGER execution_logs_fts_insert AFTER INSERT ON execution_logs
BEGIN
    INSERT INTO execution_logs_fts (rowid, message) VALUES (NEW.id, NEW.message);
END;
CREATE TRIGGER execution_logs_fts_delete AFTER DELETE ON execution_logs
BEGIN
    INSERT INTO execution_logs_fts (execution_logs_fts, rowid, message)
    VALUES ('delete', OLD.id, OLD.message);
END;
CREATE TRIGGER execution_logs_fts_update AFTER UPDATE OF message ON execution_logs
BEGIN
    INSERT INTO execution_logs_fts (execution_logs_fts, rowid, message)
    VALUES ('delete', OLD.id, OLD.message);
    INSERT INTO execution_logs_fts (rowid, message) VALUES (NEW.id, NEW.message);
END;
-- Merge segments 16 at a time instead of 4: FTS5 writes a segment per commit, and fewer,
-- wider merges cost the collector about a fifth less index work per entry (measured: 8.2 ->
-- 6.9 us CPU), for a few more segments for a query to probe (docs/storage.md).
INSERT INTO execution_logs_fts (execution_logs_fts, rank) VALUES ('automerge', 16);
-- Index the rows written before this step.
INSERT INTO execution_logs_fts (execution_logs_fts) VALUES ('rebuild');
""",
    down="""
DROP TRIGGER execution_logs_fts_update;
DROP TRIGGER execution_logs_fts_delete;
DROP TRIGGER execution_logs_fts_insert;
DROP TABLE execution_logs_fts;
""",
)


# Step 7 widens task_runs.state for SKIPPED. SQLite cannot alter a CHECK constraint, so the
# table is rebuilt. task_attempts references task_runs and foreign keys are on (a PRAGMA cannot
# turn them off inside the step's transaction), so task_attempts is parked in a plain copy
# first: task_runs then has no child rows and can be dropped and rebuilt.
_STATES_WITH_SKIPPED = sql_list(
    (
        State.PENDING,
        State.RUNNING,
        State.WAITING,
        State.SUCCESS,
        State.FAILED,
        State.CANCELLED,
        State.SKIPPED,
    )
)
_TASK_RUN_COLUMNS = (
    "execution_id, task_id, position, type, state, reason_code, needs, attempt_count, inputs,"
    " outputs, error, created_at, queued_at, started_at, ended_at, duration_ms"
)
_ATTEMPT_COLUMNS = (
    "execution_id, task_id, attempt, state, reason, started_at, ended_at, duration_ms,"
    " exit_code, error, pid, pgid"
)


def _task_runs_with(states: str, *, skipped_becomes: str | None = None) -> str:
    """SQL rebuilding task_runs with ``states`` in its CHECK, every row and attempt kept.

    ``skipped_becomes`` (the down step) rewrites SKIPPED rows to a state the narrower CHECK
    accepts; their reason_code still says why they did not run.
    """
    state_expr = (
        "state"
        if skipped_becomes is None
        else (f"CASE state WHEN '{State.SKIPPED.value}' THEN '{skipped_becomes}' ELSE state END")
    )
    # DDL assembled at import time from this module's constants and the vocabulary, never
    # from input: the same rule as sql_list's CHECK lists.
    return f"""
CREATE TABLE _task_attempts_parked AS SELECT * FROM task_attempts;
DROP TABLE task_attempts;
CREATE TABLE _task_runs_new (
    execution_id  TEXT NOT NULL REFERENCES executions (execution_id),
    task_id       TEXT NOT NULL,
    position      INTEGER NOT NULL DEFAULT 0,
    type          TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN {states}),
    reason_code   TEXT,
    needs         TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(needs)),
    attempt_count INTEGER NOT NULL DEFAULT 0,
    inputs        TEXT CHECK (inputs IS NULL OR json_valid(inputs)),
    outputs       TEXT CHECK (outputs IS NULL OR json_valid(outputs)),
    error         TEXT CHECK (error IS NULL OR json_valid(error)),
    created_at    INTEGER NOT NULL,
    queued_at     INTEGER,
    started_at    INTEGER,
    ended_at      INTEGER,
    duration_ms   INTEGER,
    PRIMARY KEY (execution_id, task_id)
);
INSERT INTO _task_runs_new ({_TASK_RUN_COLUMNS})
    SELECT {_TASK_RUN_COLUMNS.replace("state,", state_expr + ",", 1)} FROM task_runs;
DROP TABLE task_runs;
ALTER TABLE _task_runs_new RENAME TO task_runs;
CREATE TABLE task_attempts (
    execution_id TEXT NOT NULL,
    task_id      TEXT NOT NULL,
    attempt      INTEGER NOT NULL CHECK (attempt >= 1),
    state        TEXT NOT NULL CHECK (state IN {_STATES}),
    reason       TEXT,
    started_at   INTEGER,
    ended_at     INTEGER,
    duration_ms  INTEGER,
    exit_code    INTEGER,
    error        TEXT CHECK (error IS NULL OR json_valid(error)),
    pid          INTEGER,
    pgid         INTEGER,
    PRIMARY KEY (execution_id, task_id, attempt),
    FOREIGN KEY (execution_id, task_id) REFERENCES task_runs (execution_id, task_id)
);
INSERT INTO task_attempts ({_ATTEMPT_COLUMNS})
    SELECT {_ATTEMPT_COLUMNS} FROM _task_attempts_parked;
DROP TABLE _task_attempts_parked;
"""  # noqa: S608


SKIPPED_TASK_STATE = MigrationStep(
    version=7,
    name="skipped_task_state",
    up=_task_runs_with(_STATES_WITH_SKIPPED),
    # Going back, a SKIPPED task run becomes CANCELLED (the nearest older state that means
    # "did not run"); its reason_code (CONDITION_FALSE, UPSTREAM_SKIPPED...) is kept.
    down=_task_runs_with(_STATES, skipped_becomes=State.CANCELLED.value),
)

FAILURE_ACCOUNTING = MigrationStep(
    version=8,
    name="failure_accounting",
    up="""
-- Log entries the collector could not store (DESIGN.md §6.1): the total, kept with the WARN
-- entries that explain them.
ALTER TABLE executions ADD COLUMN logs_dropped INTEGER NOT NULL DEFAULT 0;
-- The keyed audit chain head (DESIGN.md §6.8), written with each keyed event: how many events
-- the trail has and the keyed hash of the newest, so a deleted newest event or a deleted
-- trail is visible to a verifier holding the key.
ALTER TABLE executions ADD COLUMN audit_event_count INTEGER;
ALTER TABLE executions ADD COLUMN audit_head TEXT;
-- HMAC-SHA256 of each event under the audit key (NULL for events written without a key).
ALTER TABLE execution_audit_events ADD COLUMN keyed_hash TEXT;
-- Which key signed this database's trails and since when; the row is keyed itself, so a
-- verifier can tell a key that belongs to this database and when keying began.
CREATE TABLE audit_key (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    key_id       TEXT NOT NULL,
    keyed_since  INTEGER NOT NULL,
    check_hash   TEXT NOT NULL
);
""",
    down="""
DROP TABLE audit_key;
ALTER TABLE execution_audit_events DROP COLUMN keyed_hash;
ALTER TABLE executions DROP COLUMN audit_head;
ALTER TABLE executions DROP COLUMN audit_event_count;
ALTER TABLE executions DROP COLUMN logs_dropped;
""",
)

#: Webhook deliveries (docs/workflows.md, "Webhook trigger"). A step of its own, so the
#: branch that adds it merges as one block (renumber it when another step lands first).
WEBHOOK_DELIVERIES = MigrationStep(
    version=9,
    name="webhook_deliveries",
    up="""
-- One row per accepted webhook request: its delivery id is remembered for as long as its
-- execution exists, so a replayed request is refused; written in the transaction that
-- creates the execution. body holds the request body as the execution reads it
-- ({{ trigger.body }}), with the execution's secret values masked.
CREATE TABLE webhook_deliveries (
    workflow_id   TEXT NOT NULL,
    delivery_id   TEXT NOT NULL,
    execution_id  TEXT NOT NULL REFERENCES executions (execution_id) ON DELETE CASCADE,
    signed_at     INTEGER NOT NULL,
    received_at   INTEGER NOT NULL,
    content_type  TEXT,
    body          TEXT,
    PRIMARY KEY (workflow_id, delivery_id)
);
CREATE UNIQUE INDEX idx_webhook_deliveries_execution ON webhook_deliveries (execution_id);
""",
    down="""
DROP TABLE webhook_deliveries;
""",
)

SUBFLOW_LINKS = MigrationStep(
    version=10,
    name="subflow_links",
    up="""
-- A subflow's child execution names the execution and task that started it (issue 15): both
-- NULL for an execution started any other way. No foreign key: retention and exports handle
-- executions one at a time, and a child outliving its parent's row must stay readable.
ALTER TABLE executions ADD COLUMN parent_execution_id TEXT;
ALTER TABLE executions ADD COLUMN parent_task_id TEXT;
-- inspect finds an execution's children with one indexed query, whatever their number.
CREATE INDEX idx_executions_parent ON executions(parent_execution_id)
    WHERE parent_execution_id IS NOT NULL;
""",
    down="""
DROP INDEX idx_executions_parent;
ALTER TABLE executions DROP COLUMN parent_task_id;
ALTER TABLE executions DROP COLUMN parent_execution_id;
""",
)

#: Every step, in order. Versions are 1..N without gaps.
STEPS: tuple[MigrationStep, ...] = (
    EXECUTIONS_AND_TASKS,
    EXECUTION_LOGS,
    AUDIT_EVENTS,
    ENGINE_OWNERSHIP,
    WORKFLOW_REGISTRY,
    LOG_SEARCH,
    SKIPPED_TASK_STATE,
    FAILURE_ACCOUNTING,
    WEBHOOK_DELIVERIES,
    SUBFLOW_LINKS,
)
LATEST_VERSION = STEPS[-1].version
