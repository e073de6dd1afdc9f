"""The storage reserve: 1 MiB of disk held beside the database for the last writes.

When the disk is full, an engine can still record how an execution ended if it first gives
back space it set aside earlier (DESIGN.md §6.2). The reserve is a real, fully written file
(never sparse: a sparse file frees nothing), named ``<db>-reserve``.

    reserve = StorageReserve(Path(".autokestra/autokestra.db"))
    reserve.ensure()      # create it (done by open_writer); False when there is no room
    reserve.release()     # on StorageFull: free the space, then retry the write
    reserve.ensure()      # later, once space returned
"""

from __future__ import annotations

import os
from pathlib import Path

#: Size of the reserve file.
RESERVE_BYTES = 1024 * 1024
_CHUNK = 64 * 1024


class StorageReserve:
    """The reserve file of one database. Every method is safe to call at any time.

    Args:
        db_path: the database file; the reserve is ``<db_path>-reserve``.
        size: bytes to hold (1 MiB by default).
    """

    def __init__(self, db_path: Path | str, size: int = RESERVE_BYTES) -> None:
        self.path = Path(f"{db_path}-reserve")
        self.size = size

    @property
    def present(self) -> bool:
        """True when the reserve is in place at its full size."""
        try:
            return self.path.lstat().st_size == self.size and self.path.is_file()
        except OSError:
            return False

    def ensure(self) -> bool:
        """Create (or complete) the reserve; ``False`` when there is no room for it yet.

        A reserve that cannot be written whole is removed, so a full disk never keeps a
        partial one (which would hold space the next ``release`` must give back anyway).
        """
        if self.present:
            return True
        try:
            self.path.unlink(missing_ok=True)
            fd = os.open(
                self.path,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                0o600,
            )
        except OSError:
            return False
        try:
            try:
                zeros = bytes(_CHUNK)
                left = self.size
                while left:
                    left -= os.write(fd, zeros[: min(left, _CHUNK)])
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            self.path.unlink(missing_ok=True)
            return False
        return True

    def release(self) -> bool:
        """Delete the reserve to give its space back; ``True`` if there was one to free."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError:
            return False
        return True
