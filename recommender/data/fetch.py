"""Download, checksum and safe zip extraction: the network- and archive-facing half of datasets.py.

Only the advice in its messages mentions the settings; :mod:`recommender.data.movielens` turns
:class:`FetchError` into its ``DatasetError`` with the same message.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import stat
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

__all__ = ["FetchError", "download", "file_md5", "published_md5", "safe_extract"]

log = logging.getLogger(__name__)


class FetchError(Exception):
    """A download or an archive failed; the message says what, where and what to do."""


def _progress_bar(total: int | None, desc: str, progress: bool):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    enabled = progress and sys.stderr.isatty()
    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, file=sys.stderr, disable=not enabled)


def download(url: str, cache_dir: Path, name: str, progress: bool) -> Path:
    """Stream ``url`` into a temporary file in ``cache_dir``; raise if it fails or comes up short."""
    advice = "Check MOVIELENS_MIRROR and the network, or set MOVIELENS_PATH to a local copy."
    try:
        response = urllib.request.urlopen(url, timeout=60)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"could not download {url}: HTTP {exc.code} {exc.reason}. {advice}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"could not download {url}: {reason}. {advice}") from None
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    fd, tmp_name = tempfile.mkstemp(dir=cache_dir, prefix=f".{name}-", suffix=".zip.part")
    tmp, received = Path(tmp_name), 0
    try:
        with response, os.fdopen(fd, "wb") as out, _progress_bar(total, f"{name}.zip", progress) as bar:
            while block := response.read(1 << 20):
                out.write(block)
                received += len(block)
                bar.update(len(block))
    except Exception as exc:  # IncompleteRead, reset connections, timeouts: all mean "truncated"
        tmp.unlink(missing_ok=True)
        raise FetchError(
            f"the download of {url} broke off after {received:,} bytes ({type(exc).__name__}: {exc}); "
            "nothing was cached: run again to retry."
        ) from None
    if total is not None and received != total:
        tmp.unlink(missing_ok=True)
        raise FetchError(
            f"the download of {url} was truncated: got {received:,} of {total:,} bytes; "
            "nothing was cached: run again to retry."
        )
    log.info("downloaded %s (%d bytes)", url, received)
    return tmp


def published_md5(url: str) -> str | None:
    """The MD5 published at ``url`` (``<archive>.md5``), or None when the source has none."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            text = response.read(4096).decode("ascii", "replace")
    except (urllib.error.URLError, OSError) as exc:
        # Mirrors (and the local copies) need not publish one; the structural checks still run.
        log.warning("no checksum at %s (%s); relying on the structural checks", url, exc)
        return None
    match = re.search(r"\b[0-9a-fA-F]{32}\b", text)
    if not match:
        log.warning("%s holds no MD5 checksum; relying on the structural checks", url)
        return None
    return match.group().lower()


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def safe_extract(archive: Path, target: Path, remedy: str, label: str) -> None:
    """Extract ``archive`` (named ``label`` in errors) into ``target``; refuse ``/``, ``..``, symlinks."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for member in members:
                name = member.filename.replace("\\", "/")
                if stat.S_ISLNK(member.external_attr >> 16):
                    raise FetchError(
                        f"{label}: member {member.filename!r} is a symbolic link, which a MovieLens archive "
                        f"never holds; the archive was not extracted. {remedy}"
                    )
                if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in PurePosixPath(name).parts:
                    raise FetchError(
                        f"{label}: member {member.filename!r} would be written outside the extraction "
                        f"folder; the archive is unsafe and was not extracted. {remedy}"
                    )
            root = target.resolve()
            for member in members:
                dest = (target / member.filename.replace("\\", "/")).resolve()
                if not dest.is_relative_to(root):  # belt and braces after the name checks above
                    raise FetchError(f"{label}: member {member.filename!r} escapes {target}. {remedy}")
                if member.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                # Reading to the end makes zipfile check the member's CRC.
                with zf.open(member) as src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise FetchError(
            f"{label}: not a valid zip archive ({exc}); it is corrupt or truncated. {remedy}"
        ) from None
