"""Atomic file replacement: readers see the old file or the new one, never half of one.

The one implementation behind the registry's manifest and ``current`` pointer, the exported
``serving.npz``/``idmaps.json`` and the bot's heartbeat file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "fsync_dir", "fsync_file"]


def atomic_write(path: Path, write: Callable[[IO[bytes]], object], *, durable: bool = True) -> None:
    """Let ``write(fh)`` fill a temp file next to ``path``, then rename it over ``path``.

    ``durable`` fsyncs the data before the rename (not the directory: see :func:`fsync_dir`), so a
    power cut cannot leave a renamed but empty file. The temp file is removed if anything fails.
    Temp names are ``.<name>.tmp-*`` in the same folder (the rename must not cross filesystems).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fsync_file(path: Path) -> None:
    """Flush a finished file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make renames inside ``path`` durable; a no-op where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
