"""Storage errors that are not a member's fault (the member-facing one is core's StorageUnavailable)."""

from __future__ import annotations

__all__ = ["BackupUnsupported", "ConstraintViolation", "StorageCorrupt", "StorageError"]


class StorageError(RuntimeError):
    """The database cannot be used as configured (schema from a newer version, catalog mismatch)."""


class StorageCorrupt(StorageError):
    """The SQLite file is damaged; the message names the newest backup and the restore command."""


class BackupUnsupported(StorageError):
    """This database is backed up by its server (PostgreSQL: pg_dump), not by the bot."""


class ConstraintViolation(StorageError):
    """A row broke a constraint. ``kind``: ``foreign_key``, ``check``, ``unique`` or ``not_null``."""

    def __init__(self, kind: str, detail: str) -> None:
        self.kind = kind
        super().__init__(f"{kind}: {detail}")
