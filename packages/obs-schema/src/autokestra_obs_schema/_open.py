"""The two ways the rest of Autokestra opens the database.

writer = open_writer(path)   # creates and migrates; the process's one write path
conn = open_reader(path)     # read-only; refuses a schema of another version
"""

from __future__ import annotations

from pathlib import Path

import apsw

from ._connection import connect
from ._migrations import migrate, require_current
from ._writer import CHECKPOINT_INTERVAL_S, Writer

#: Where the database lives when neither ``--db``, ``AUTOKESTRA_DB`` nor the config file's
#: ``storage.path`` says otherwise (relative to the working directory).
DEFAULT_DB_PATH = Path(".autokestra") / "autokestra.db"


def open_writer(
    path: Path | str, *, checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S
) -> Writer:
    """Open (creating if needed) the database for writing, migrated to the latest schema.

    Args:
        path: the database file.
        checkpoint_interval_s: the writer's routine checkpoint interval.
    """
    writer = Writer(path, checkpoint_interval_s=checkpoint_interval_s)
    try:
        with writer.locked() as conn:
            migrate(conn)
    except BaseException:
        writer.close()
        raise
    return writer


def open_reader(path: Path | str) -> apsw.Connection:
    """Open the database read-only after checking its schema version.

    Raises:
        DatabaseNotFound: there is no database at ``path``.
        SchemaVersionError: the schema is older or newer than the code.
    """
    conn = connect(path, readonly=True)
    try:
        require_current(conn)
    except BaseException:
        conn.close()
        raise
    return conn
