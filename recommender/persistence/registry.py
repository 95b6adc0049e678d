"""Versioned model artifacts under ``BOT_DATA_DIR/models`` and the atomic ``current`` pointer.

Layout::

    models/
      current                              pointer file: the serving version's name
      20261121T181500Z-mf-3fa2c1/          one immutable folder per trained version
        model.keras serving.npz idmaps.json metrics.json loss.png
        manifest.json                      size + sha256 of every file above, written last
      .staging-<version>/                  a version being written (never served)

A version is built in a staging folder inside ``models/`` (same filesystem, so the rename is
atomic), every file is fsynced, the manifest is written last, and only then is the folder renamed
into place. ``current`` is moved by ``os.replace`` of a fsynced temp file. A crash at any point
therefore leaves ``current`` naming a complete version (or nothing), and a folder without a valid
manifest is never loaded. No TensorFlow here: the bot process uses this module.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recommender.core.atomic import atomic_write, fsync_dir, fsync_file
from recommender.core.errors import NoModel

if TYPE_CHECKING:
    from recommender.scoring.model import ServingModel

__all__ = [
    "CURRENT",
    "DEFAULT_TOLERANCE",
    "MANIFEST",
    "METRICS",
    "Decision",
    "Registry",
    "VersionInfo",
]

log = logging.getLogger(__name__)

CURRENT = "current"
MANIFEST = "manifest.json"
METRICS = "metrics.json"
#: What the bot needs to serve a version; model.keras and loss.png are kept for people and retraining.
SERVING_FILES = ("serving.npz", "idmaps.json", METRICS)
STAGING_PREFIX = ".staging-"
#: How much worse (absolute RMSE, in stars) a new run may score than the serving version and still be
#: published. Measured on ml-latest-small, default mf, seeds 0-4: on the same held-out ratings the
#: five models span 0.8409-0.8467 (consecutive reruns differ by <= 0.0045), so 0.01 lets any
#: comparable rerun through and holds a genuinely worse model. The recorded validation RMSEs of the
#: same runs span 0.818-0.851 (different slices), which is why the paired comparison is preferred.
DEFAULT_TOLERANCE = 0.01
DEFAULT_KEEP = 5
#: A staging folder older than this belongs to a run that died; a live run finishes long before.
STALE_STAGING_SECONDS = 6 * 3600


@dataclass(frozen=True, slots=True)
class VersionInfo:
    version: str
    path: Path
    metrics: dict[str, Any]
    is_current: bool


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a finished run should become ``current``, and why (shown to the admin)."""

    publish: bool
    reason: str


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _default_loader(path: Path) -> ServingModel:
    from recommender.scoring.model import ServingModel  # numpy only, but keep import cost off module load

    return ServingModel.load(path)


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write ``payload`` as JSON next to ``path``, fsync it, rename it over ``path``, fsync the folder."""
    text = json.dumps(payload, indent=2, sort_keys=True, allow_nan=False, default=str) + "\n"
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
    fsync_dir(path.parent)


class Registry:
    """The model versions under one ``models/`` folder. Safe to share between processes."""

    def __init__(
        self,
        root: Path,
        *,
        loader: Callable[[Path], ServingModel] | None = None,
    ) -> None:
        self.root = Path(root)
        self._loader = loader or _default_loader

    # -- naming -------------------------------------------------------------------------------

    def new_version(self, family: str, *, now: datetime | None = None) -> str:
        """A fresh name like ``20261121T181500Z-mf-3fa2c1``: sorts by time, unique by the suffix."""
        if not family.isidentifier():
            raise ValueError(f"model family must be a plain name, got {family!r}")
        stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        while True:
            version = f"{stamp}-{family}-{secrets.token_hex(3)}"
            if not (self.root / version).exists() and not (self.root / (STAGING_PREFIX + version)).exists():
                return version

    def path(self, version: str) -> Path:
        if not version or "/" in version or "\\" in version or version.startswith("."):
            raise NoModel(f"{version!r} is not a model version name.")
        return self.root / version

    # -- writing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def stage(self, version: str) -> Iterator[Path]:
        """Yield an empty staging folder for ``version``; it is removed if the block raises.

        Write every artifact into it, then call :meth:`commit` (inside or after the block).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / (STAGING_PREFIX + version)
        staging.mkdir()
        try:
            yield staging
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def store(self, version: str, write: Callable[[Path], None]) -> Path:
        """Stage ``version``, let ``write(folder)`` fill it, then :meth:`commit` it. Returns its folder."""
        with self.stage(version) as staging:
            write(staging)
            return self.commit(staging, version)

    def commit(self, staging: Path, version: str) -> Path:
        """Fsync the staged files, write the manifest last, and rename the folder into place."""
        missing = [name for name in SERVING_FILES if not (staging / name).is_file()]
        if missing:
            raise FileNotFoundError(f"cannot commit {version}: {', '.join(missing)} not written")
        files: dict[str, dict[str, Any]] = {}
        for item in sorted(staging.iterdir()):
            if item.name == MANIFEST or not item.is_file():
                continue
            fsync_file(item)
            files[item.name] = {"size": item.stat().st_size, "sha256": _sha256(item)}
        write_json_atomic(staging / MANIFEST, {"version": version, "created_at": time.time(), "files": files})
        fsync_dir(staging)
        final = self.path(version)
        os.rename(staging, final)  # fails (rather than merging) if the name somehow exists
        fsync_dir(self.root)
        log.info("stored model version %s (%d files)", version, len(files))
        return final

    def set_current(self, version: str) -> None:
        """Point ``current`` at a committed, verified version (atomic rename of a temp file)."""
        self.verify(version)
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(self.root / CURRENT, lambda fh: fh.write(f"{version}\n".encode()))
        try:
            fsync_dir(self.root)
        except OSError:
            # The rename already happened: the new version is serving, and either pointer is valid
            # after a power cut. Reporting failure now would contradict what readers see.
            log.warning("could not fsync %s after moving current", self.root, exc_info=True)
        log.info("current model version is now %s", version)

    # -- reading ------------------------------------------------------------------------------

    def current_version(self) -> str | None:
        """The serving version's name, or None when nothing was published yet."""
        try:
            text = (self.root / CURRENT).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    def read_metrics(self, version: str) -> dict[str, Any]:
        try:
            with (self.path(version) / METRICS).open(encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise NoModel(f"Model version {version} has no readable metrics ({exc}).") from exc
        if not isinstance(data, dict):
            raise NoModel(f"Model version {version} has malformed metrics.")
        return data

    def verify(self, version: str) -> None:
        """Raise :class:`NoModel` unless ``version`` is complete and every file matches its manifest."""
        folder = self.path(version)
        if not folder.is_dir():
            raise NoModel(f"Model version {version} is missing from {self.root}.")
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            files = manifest["files"]
            if not isinstance(files, dict):
                raise TypeError("files is not a mapping")
        except FileNotFoundError:
            raise NoModel(f"Model version {version} is half-written (no manifest); retrain it.") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise NoModel(f"Model version {version} has a corrupt manifest ({exc}).") from exc
        for name in SERVING_FILES:
            if name not in files:
                raise NoModel(f"Model version {version} is incomplete: {name} is not in its manifest.")
        for name, expected in files.items():
            item = folder / name
            try:
                size = item.stat().st_size
            except OSError:
                raise NoModel(f"Model version {version} is half-written: {name} is missing.") from None
            if size != expected.get("size") or _sha256(item) != expected.get("sha256"):
                raise NoModel(f"Model version {version} is corrupt: {name} does not match its manifest.")

    def load(self, version: str) -> ServingModel:
        """Verify and load one version for serving; any problem becomes :class:`NoModel`."""
        self.verify(version)
        metrics = self.read_metrics(version)
        try:
            model = self._loader(self.path(version))
        except NoModel:
            raise
        except Exception as exc:
            log.warning("model version %s failed to load", version, exc_info=True)
            detail = f"{type(exc).__name__}: {exc}"
            raise NoModel(f"Model version {version} could not be loaded ({detail}).") from exc
        # The folder name is the version's identity, whatever the arrays were saved with.
        for attr, value in (("version", version), ("metrics", metrics)):
            with contextlib.suppress(AttributeError, TypeError):
                setattr(model, attr, value)
        return model

    def load_current(self) -> ServingModel:
        """The serving model, or :class:`NoModel` saying why there is none."""
        version = self.current_version()
        if version is None:
            raise NoModel("None has been published yet; run `python train.py` or `/retrain`.")
        try:
            return self.load(version)
        except NoModel:
            # A concurrent publish may have moved ``current`` between our read and the load.
            again = self.current_version()
            if again is not None and again != version:
                return self.load(again)
            raise

    def list_versions(self) -> list[VersionInfo]:
        """Committed versions, oldest first (names sort by time). Staging folders are left out."""
        if not self.root.is_dir():
            return []
        current = self.current_version()
        out: list[VersionInfo] = []
        for item in sorted(self.root.iterdir()):
            if not item.is_dir() or item.name.startswith("."):
                continue
            try:
                metrics = self.read_metrics(item.name)
            except NoModel:
                metrics = {}
            out.append(VersionInfo(item.name, item, metrics, item.name == current))
        return out

    # -- policy -------------------------------------------------------------------------------

    def decide(
        self,
        metrics: dict[str, Any],
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        force: bool = False,
    ) -> Decision:
        """Should a run with ``metrics`` replace the serving version?

        When ``metrics["compared_with"]`` holds ``{"version", "n", "new_rmse", "old_rmse"}`` for the
        serving version (both models scored on the same held-out ratings, which neither trained on),
        that paired comparison decides: recorded validation RMSEs come from different validation
        slices, and on ml-latest-small they differ by up to ~0.025 between seeds of the same model.
        Otherwise ``val_rmse`` is compared with the serving version's.
        """
        new = metrics.get("val_rmse")
        if not isinstance(new, int | float) or not math.isfinite(new):
            return Decision(False, f"the run has no finite validation RMSE ({new!r})")
        current = self.current_version()
        if force:
            return Decision(True, f"published with --force (validation RMSE {new:.4f})")
        if current is None:
            return Decision(True, f"first model (validation RMSE {new:.4f})")
        try:
            self.verify(current)
            old_metrics = self.read_metrics(current)
        except NoModel as exc:
            return Decision(True, f"the serving version {current} is unusable ({exc}); replacing it")
        if old_metrics.get("dataset") != metrics.get("dataset"):
            # RMSEs on different datasets are not comparable, and the catalog follows the dataset.
            return Decision(
                True,
                f"dataset changed from {old_metrics.get('dataset')} to {metrics.get('dataset')} "
                f"(validation RMSE {new:.4f})",
            )
        paired = metrics.get("compared_with")
        if isinstance(paired, dict) and paired.get("version") == current:
            new_p, old_p = paired.get("new_rmse"), paired.get("old_rmse")
            if isinstance(new_p, int | float) and isinstance(old_p, int | float):
                n = paired.get("n")
                where = f"held-out RMSE {new_p:.4f} vs {old_p:.4f} for {current} on the same {n} ratings"
                refused, note = _ranking_verdict(paired, current)
                if new_p <= old_p + tolerance:
                    if refused is not None:
                        return Decision(False, refused)
                    return Decision(True, f"{where} (tolerance {tolerance:g}){note}")
                return Decision(
                    False,
                    f"{where}: worse by more than {tolerance:g}; kept {current} "
                    "(use --force to publish anyway)",
                )
        old = old_metrics.get("val_rmse")
        if not isinstance(old, int | float) or not math.isfinite(old):
            return Decision(True, f"the serving version {current} has no validation RMSE to beat")
        if new <= old + tolerance:
            return Decision(
                True, f"validation RMSE {new:.4f} vs {old:.4f} for {current} (tolerance {tolerance:g})"
            )
        return Decision(
            False,
            f"validation RMSE {new:.4f} is worse than the serving version's {old:.4f} by more than "
            f"{tolerance:g}; kept {current} (use --force to publish anyway)",
        )

    def prune(self, keep: int = DEFAULT_KEEP) -> list[str]:
        """Delete all but the newest ``keep`` versions (never ``current``) and stale staging folders."""
        if keep < 1:
            raise ValueError("keep must be at least 1")
        if not self.root.is_dir():
            return []
        current = self.current_version()
        removed: list[str] = []
        versions = [v.version for v in self.list_versions()]
        for version in versions[: max(0, len(versions) - keep)]:
            if version == current:
                continue
            shutil.rmtree(self.root / version, ignore_errors=True)
            removed.append(version)
        cutoff = time.time() - STALE_STAGING_SECONDS
        for item in self.root.iterdir():
            stale = item.name.startswith((STAGING_PREFIX, f".{CURRENT}.tmp-"))
            if stale and item.stat().st_mtime < cutoff:
                if item.is_dir():
                    shutil.rmtree(item, ignore_errors=True)
                else:
                    item.unlink(missing_ok=True)
                removed.append(item.name)
        if removed:
            log.info("pruned model versions: %s", ", ".join(removed))
        return removed


#: A new run whose held-out NDCG@5 is below this share of the serving version's is not published.
NDCG_KEEP_SHARE = 0.9


def _ranking_verdict(paired: dict[str, Any], current: str) -> tuple[str | None, str]:
    """(why the run's picks are clearly worse than the serving version's or None, a note for the reason)."""
    new, old = paired.get("new_ndcg"), paired.get("old_ndcg")
    if not (isinstance(new, int | float) and isinstance(old, int | float)):
        return None, ""
    where = (
        f"held-out NDCG@5 {new:.4f} vs {old:.4f} for {current} on the same {paired.get('ndcg_users')} users"
    )
    if new >= NDCG_KEEP_SHARE * old:
        return None, f"; {where}"
    worse = f"the picks would be more than {1 - NDCG_KEEP_SHARE:.0%} worse"
    return f"{where}: {worse}; kept {current} (use --force to publish anyway)", ""
