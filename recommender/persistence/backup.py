"""Online backups of the SQLite database, their pruning, and a checked restore.

The bot's loop calls :func:`backup_now` once a day (off the event loop: it is blocking I/O) and then
:func:`prune_backups`. A backup is ``VACUUM INTO`` a temporary name, checked, then renamed: a reader
never sees half a file, and the copy is a consistent snapshot taken while the bot keeps writing.

Restore (with the bot stopped)::

    python -m recommender.persistence.backup --restore data/backups/bot-20250101T030000Z.sqlite3

It checks the backup with ``PRAGMA integrity_check``, refuses while another process has the
database open, keeps the replaced file (and its WAL) aside as ``bot.sqlite3.replaced-<time>``, and
puts the backup in place. PostgreSQL databases are backed up by their server (``pg_dump``).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from recommender.persistence.errors import BackupUnsupported, StorageCorrupt, StorageError

__all__ = [
    "backup_now",
    "corrupt_message",
    "daily_backup",
    "newest_backup",
    "prune_backups",
    "restore",
    "verify",
]

log = logging.getLogger(__name__)
_STAMP = "%Y%m%dT%H%M%SZ"
DAY = 86_400.0


def _is_url(location: Path | str) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def _stamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime(_STAMP)


def _taken_at(path: Path, stem: str) -> float | None:
    """When a backup was taken, from its name (``<stem>-<UTC time>.sqlite3``)."""
    raw = path.name.removeprefix(f"{stem}-").removesuffix(".sqlite3")
    try:
        return datetime.strptime(raw, _STAMP).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _backups(backup_dir: Path, stem: str) -> list[tuple[float, Path]]:
    """Every backup in ``backup_dir``, oldest first."""
    if not backup_dir.is_dir():
        return []
    found = [(t, p) for p in backup_dir.glob(f"{stem}-*.sqlite3") if (t := _taken_at(p, stem)) is not None]
    return sorted(found)


def newest_backup(backup_dir: Path | str, stem: str = "bot") -> Path | None:
    found = _backups(Path(backup_dir), stem)
    return found[-1][1] if found else None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _connect_ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)


def verify(path: Path | str, *, quick: bool = False) -> None:
    """Raise :class:`StorageCorrupt` unless ``path`` is a whole SQLite database."""
    path = Path(path)
    if not path.is_file():
        raise StorageError(f"{path} does not exist")
    try:
        conn = _connect_ro(path)
        try:
            rows = conn.execute("PRAGMA quick_check" if quick else "PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StorageCorrupt(f"{path} is not a usable SQLite database: {exc}") from exc
    if [r[0] for r in rows] != ["ok"]:
        raise StorageCorrupt(f"{path} failed its integrity check: {'; '.join(str(r[0]) for r in rows[:3])}")


def backup_now(db: Path | str, backup_dir: Path | str | None = None, *, now: float | None = None) -> Path:
    """Copy the live database to ``<backup_dir>/<stem>-<UTC time>.sqlite3``; returns that path.

    Safe while the bot writes (a read transaction's snapshot). ``backup_dir`` defaults to
    ``<database folder>/backups``. Raises :class:`BackupUnsupported` for a PostgreSQL URL.
    """
    if _is_url(db):
        raise BackupUnsupported(
            "the database is on PostgreSQL: back it up on the server (pg_dump, or the server's own "
            "base backups); the bot only backs up its SQLite file"
        )
    path = Path(db)
    if not path.is_file():
        raise StorageError(f"there is no database at {path} to back up")
    target_dir = Path(backup_dir) if backup_dir else path.parent / "backups"
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{path.stem}-{_stamp(time.time() if now is None else now)}.sqlite3"
    tmp = target_dir / f".{target.name}.tmp"
    tmp.unlink(missing_ok=True)
    conn = _connect_ro(path)
    try:
        conn.execute("VACUUM INTO ?", (str(tmp),))
    finally:
        conn.close()
    try:
        verify(tmp, quick=True)
        _fsync(tmp)
        os.replace(tmp, target)
        _fsync(target_dir)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("backed up %s to %s", path, target)
    return target


def prune_backups(
    backup_dir: Path | str, keep_days: int = 7, *, now: float | None = None, stem: str = "bot"
) -> list[Path]:
    """Delete backups older than ``keep_days`` (never the newest one) and leftover temp files.
    Returns what was deleted."""
    if keep_days < 1:
        raise ValueError("keep_days must be at least 1")
    backup_dir = Path(backup_dir)
    now = time.time() if now is None else now
    found = _backups(backup_dir, stem)
    doomed = [p for t, p in found[:-1] if t < now - keep_days * DAY]
    if backup_dir.is_dir():  # a temp file a day old belongs to a backup that died mid-way
        doomed += [p for p in backup_dir.glob(f".{stem}-*.tmp") if p.stat().st_mtime < now - DAY]
    for p in doomed:
        p.unlink(missing_ok=True)
        log.info("pruned backup %s", p)
    return doomed


def daily_backup(
    db: Path | str, backup_dir: Path | str, keep_days: int, *, now: float | None = None
) -> Path | None:
    """The bot's scheduled step: a backup when the newest one is a day old (or there is none), then
    pruning. Returns the new backup, or None (not due, PostgreSQL, or no database file yet).

    Judged by the newest backup's time rather than by a timer, so a bot restarted every few hours
    still backs up once a day, and one restarted twice in a minute does not back up twice.
    """
    if _is_url(db) or not Path(db).is_file():
        return None
    now = time.time() if now is None else now
    found = _backups(Path(backup_dir), Path(db).stem)
    taken = None
    if not found or found[-1][0] <= now - DAY:
        taken = backup_now(db, backup_dir, now=now)
    prune_backups(backup_dir, keep_days, now=now, stem=Path(db).stem)
    return taken


def corrupt_message(db: Path, backup_dir: Path, detail: str) -> str:
    """What a member of staff reads when the database file is damaged at start-up."""
    head = f"The database file {db} is damaged ({detail}), so the bot will not start on it."
    newest = newest_backup(backup_dir, db.stem)
    if newest is None:
        return (
            f"{head} No backup was found in {backup_dir}. Move the damaged file aside to start with an "
            "empty database (members' ratings would be lost), or restore a copy of your own."
        )
    return (
        f"{head} The newest backup is {newest}. Restore it (the damaged file is kept aside) with: "
        f"python -m recommender.persistence.backup --restore {newest} --db {db}"
    )


def _in_use(db: Path) -> bool:
    """True when another connection has ``db`` open (the bot, a trainer, a shell)."""
    conn = sqlite3.connect(db, isolation_level=None, timeout=0)
    try:
        # every open WAL connection holds a shared lock on the file: an exclusive one fails then
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        return "locked" in str(exc).lower() or "busy" in str(exc).lower()
    except sqlite3.DatabaseError:
        return False  # a damaged file: nobody can be using it
    finally:
        conn.close()


def restore(backup: Path | str, db: Path | str, *, now: float | None = None) -> Path | None:
    """Put ``backup`` in place of ``db``; returns where the replaced file was kept (None: there was none).

    Refuses (``StorageError``) while the database is open elsewhere, and (``StorageCorrupt``) a
    backup that fails ``PRAGMA integrity_check``; nothing is changed then.
    """
    backup, db = Path(backup), Path(db)
    verify(backup)
    if db.exists() and _in_use(db):
        raise StorageError(f"{db} is open in another process (is the bot running?); stop it, then restore")
    db.parent.mkdir(parents=True, exist_ok=True)
    tmp = db.with_name(f".{db.name}.restoring")
    shutil.copyfile(backup, tmp)
    _fsync(tmp)
    aside = None
    if db.exists():
        aside = db.with_name(f"{db.name}.replaced-{_stamp(time.time() if now is None else now)}")
        os.replace(db, aside)
    # A WAL left from the replaced file must never be replayed onto the restored one.
    for suffix in ("-wal", "-shm"):
        side = db.with_name(db.name + suffix)
        if side.exists():
            if aside is not None:
                os.replace(side, aside.with_name(aside.name + suffix))
            else:
                side.unlink()
    os.replace(tmp, db)
    _fsync(db.parent)
    log.info("restored %s from %s (replaced file kept at %s)", db, backup, aside)
    return aside


def main(argv: list[str] | None = None) -> int:
    from recommender.core.config import ConfigError, Settings

    parser = argparse.ArgumentParser(prog="python -m recommender.persistence.backup", description=__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--now", action="store_true", help="take a backup now")
    action.add_argument("--restore", type=Path, metavar="BACKUP", help="restore this backup (bot stopped)")
    action.add_argument("--list", action="store_true", help="list the backups, newest last")
    parser.add_argument("--db", type=Path, help="the database file (default: from BOT_DATA_DIR)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    db = args.db or settings.db_path
    backup_dir = settings.backup_dir if args.db is None else db.parent / "backups"
    try:
        if args.now:
            print(backup_now(settings.storage_location if args.db is None else db, backup_dir))
        elif args.list:
            for _, path in _backups(backup_dir, db.stem):
                print(path)
        else:
            aside = restore(args.restore, db)
            print(
                f"Restored {db} from {args.restore}." + (f" The replaced file is {aside}." if aside else "")
            )
    except StorageError as exc:
        print(f"Not done: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
