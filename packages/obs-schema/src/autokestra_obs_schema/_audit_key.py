"""The audit key: 32 secret bytes beside the database that make the audit chain a signature.

Plain SHA-256 links show an edit only to someone who trusts that nobody recomputed them. The
key (``audit.key`` next to the database file, mode 0600) is never stored in the database nor
in an export, so whoever edits a copied or stolen database cannot produce keyed hashes that
verify (DESIGN.md §6.8).

    key = load_or_create_audit_key(Path(".autokestra/autokestra.db"))   # the writer, once
    key = load_audit_key(Path(".autokestra/autokestra.db"))             # a verifier: or None
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ._errors import StorageError

#: File name of the audit key, in the database's folder.
AUDIT_KEY_FILE = "audit.key"
#: Length of the key in bytes.
AUDIT_KEY_BYTES = 32
_KEY_ID_LABEL = b"autokestra audit key id"


class AuditKeyError(StorageError):
    """The audit key file exists but cannot be used (wrong size, a symlink, unreadable)."""


@dataclass(frozen=True, slots=True)
class AuditKey:
    """The audit key's bytes; its ``repr`` never shows them."""

    secret: bytes = field(repr=False)
    #: Where the key was read from.
    path: Path

    @property
    def key_id(self) -> str:
        """A public fingerprint of the key (16 hex digits), stored in the database."""
        return hmac.new(self.secret, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]

    def record_check(self, keyed_since: int) -> str:
        """The keyed hash of the database's ``audit_key`` row (key id and keyed-since time)."""
        content = json.dumps([self.key_id, keyed_since], separators=(",", ":")).encode("ascii")
        return hmac.new(self.secret, content, hashlib.sha256).hexdigest()


def audit_key_path(db_path: Path | str) -> Path:
    """Where the audit key of the database at ``db_path`` lives."""
    return Path(db_path).parent / AUDIT_KEY_FILE


def load_audit_key(db_path: Path | str) -> AuditKey | None:
    """Read the audit key of the database at ``db_path``; ``None`` when there is none.

    Raises:
        AuditKeyError: the file is a symlink, not a regular file, unreadable or not 32 bytes.
    """
    path = audit_key_path(db_path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuditKeyError(
            f"Cannot read the audit key {path}: {exc.strerror or exc} (it must be a regular "
            "file, not a symlink)"
        ) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AuditKeyError(f"The audit key {path} is not a regular file")
        data = os.read(fd, AUDIT_KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) != AUDIT_KEY_BYTES:
        raise AuditKeyError(
            f"The audit key {path} is {len(data)} bytes, not {AUDIT_KEY_BYTES}: restore it "
            "from a backup, or move it away to verify without it"
        )
    return AuditKey(data, path)


def load_or_create_audit_key(db_path: Path | str) -> AuditKey:
    """Return the database's audit key, creating it (32 random bytes, 0600) if missing.

    Creation is atomic: the key is written to a private temporary file and hard-linked to
    its name, so two processes creating it at once agree on one key and a crash never leaves
    a short key behind.

    Raises:
        AuditKeyError: an existing key file is unusable (see :func:`load_audit_key`).
        StorageError: the key could not be written.
    """
    existing = load_audit_key(db_path)
    if existing is not None:
        return existing
    path = audit_key_path(db_path)
    temporary = path.with_name(f".{AUDIT_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)  # the umask may have removed bits, never added: be explicit
            os.write(fd, secrets.token_bytes(AUDIT_KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # another process won the race: use its key
            os.link(temporary, path)
    except OSError as exc:
        raise StorageError(f"Cannot create the audit key {path}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    key = load_audit_key(db_path)
    if key is None:  # removed between link and read: nothing sane to do but say so
        raise AuditKeyError(f"The audit key {path} disappeared while it was created")
    return key
