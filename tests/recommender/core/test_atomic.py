"""Atomic replacement: the old file or the new one, never half, and no temp file left on failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recommender.core.atomic import atomic_write, fsync_dir, fsync_file


def test_replaces_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "current"
    path.write_text("old\n")
    atomic_write(path, lambda fh: fh.write(b"new\n"))
    assert path.read_text() == "new\n"
    atomic_write(path, lambda fh: fh.write(b"again"), durable=False)
    assert path.read_text() == "again"
    assert [p.name for p in tmp_path.iterdir()] == ["current"]
    fsync_file(path)
    fsync_dir(tmp_path)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "idmaps.json"
    path.write_text("old")

    def broken(fh) -> None:  # type: ignore[no-untyped-def]
        fh.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(path, broken)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["idmaps.json"]

    def no_rename(*args: object) -> None:
        raise OSError(5, "rename failed")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="rename failed"):
        atomic_write(path, lambda fh: fh.write(b"new"))
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["idmaps.json"]
