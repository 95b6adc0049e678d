"""Registry: versions are complete or invisible, and ``current`` only ever names a complete one."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from recommender.core.errors import NoModel
from recommender.persistence import registry as registry_mod
from recommender.persistence.registry import CURRENT, MANIFEST, Registry


class FakeServing:
    """Stands in for scoring.ServingModel: the registry only needs save(dir) / load(dir)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.version = ""
        self.metrics: dict[str, Any] = {}

    def save(self, folder: Path) -> None:
        (folder / "serving.npz").write_bytes(b"arrays-" + self.tag.encode() * 100)
        (folder / "idmaps.json").write_text(json.dumps({"tag": self.tag}))

    @classmethod
    def load(cls, folder: Path) -> FakeServing:
        return cls(json.loads((folder / "idmaps.json").read_text())["tag"])


def make_registry(root: Path) -> Registry:
    return Registry(root, loader=FakeServing.load)


def writer(tag: str, val_rmse: float = 0.9, dataset: str = "ml-100k"):
    def write(folder: Path) -> None:
        FakeServing(tag).save(folder)
        (folder / "model.keras").write_bytes(b"keras" * 1000)
        (folder / "loss.png").write_bytes(b"\x89PNG fake")
        (folder / "metrics.json").write_text(json.dumps({"val_rmse": val_rmse, "dataset": dataset}))

    return write


def publish(reg: Registry, tag: str, val_rmse: float = 0.9) -> str:
    version = reg.new_version("mf")
    reg.store(version, writer(tag, val_rmse))
    reg.set_current(version)
    return version


def test_version_names_sort_by_time_and_are_unique(tmp_path: Path) -> None:
    reg = make_registry(tmp_path)
    now = datetime(2026, 11, 21, 18, 15, 0, tzinfo=UTC)
    names = {reg.new_version("mf", now=now) for _ in range(50)}
    assert len(names) == 50
    assert all(re.fullmatch(r"20261121T181500Z-mf-[0-9a-f]{6}", n) for n in names)
    with pytest.raises(ValueError):
        reg.new_version("../evil")


def test_publish_and_load_current(tmp_path: Path) -> None:
    reg = make_registry(tmp_path)
    assert reg.current_version() is None
    with pytest.raises(NoModel, match="None has been published"):
        reg.load_current()
    version = publish(reg, "first")
    folder = tmp_path / version
    assert {p.name for p in folder.iterdir()} == {
        "serving.npz",
        "idmaps.json",
        "metrics.json",
        "model.keras",
        "loss.png",
        MANIFEST,
    }
    manifest = json.loads((folder / MANIFEST).read_text())
    assert set(manifest["files"]) == {"serving.npz", "idmaps.json", "metrics.json", "model.keras", "loss.png"}
    assert reg.current_version() == version
    model = reg.load_current()
    assert model.tag == "first"
    assert model.version == version  # the folder name wins over whatever was saved
    assert model.metrics["val_rmse"] == 0.9
    # No staging folders or temp pointer files are left behind.
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_half_written_version_is_rejected(tmp_path: Path) -> None:
    reg = make_registry(tmp_path)
    good = publish(reg, "good")
    # A version folder whose manifest was never written (the writer died before commit finished).
    half = tmp_path / reg.new_version("mf")
    half.mkdir()
    writer("half")(half)
    with pytest.raises(NoModel, match="half-written"):
        reg.load(half.name)
    with pytest.raises(NoModel, match="half-written"):
        reg.set_current(half.name)
    # Pointing current at it by hand (as a crash could never do) still does not serve it.
    (tmp_path / CURRENT).write_text(half.name)
    with pytest.raises(NoModel, match="half-written"):
        reg.load_current()
    (tmp_path / CURRENT).write_text(good)
    assert reg.load_current().tag == "good"


@pytest.mark.parametrize("damage", ["truncate", "delete", "manifest"])
def test_corrupt_version_is_rejected(tmp_path: Path, damage: str) -> None:
    reg = make_registry(tmp_path)
    version = publish(reg, "v")
    folder = tmp_path / version
    if damage == "truncate":
        data = (folder / "serving.npz").read_bytes()
        (folder / "serving.npz").write_bytes(data[: len(data) // 2])
    elif damage == "delete":
        (folder / "idmaps.json").unlink()
    else:
        (folder / MANIFEST).write_text("{not json")
    with pytest.raises(NoModel, match=version):
        reg.load_current()


def test_loader_failure_becomes_no_model(tmp_path: Path) -> None:
    def broken(folder: Path) -> FakeServing:
        raise ValueError("arrays have the wrong shape")

    reg = Registry(tmp_path, loader=broken)
    publish(reg, "v")
    with pytest.raises(NoModel, match="wrong shape"):
        reg.load_current()


def test_commit_refuses_a_version_without_serving_files(tmp_path: Path) -> None:
    reg = make_registry(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"serving\.npz"):
        reg.store(reg.new_version("mf"), lambda folder: (folder / "metrics.json").write_text("{}"))
    assert list(tmp_path.iterdir()) == []  # the staging folder was removed


# Every filesystem step of publishing, in order. Failing at each one in turn simulates a crash (or a
# full disk) at that exact point.
_STEPS = ("fsync", "replace", "rename")


def _count_steps(monkeypatch: pytest.MonkeyPatch, fail_at: int | None) -> list[str]:
    calls: list[str] = []
    for name in _STEPS:
        real = getattr(os, name)

        def wrapped(*args: Any, _name: str = name, _real: Any = real, **kwargs: Any) -> Any:
            calls.append(_name)
            if fail_at is not None and len(calls) - 1 == fail_at:
                raise OSError(28, f"injected failure at step {fail_at} ({_name})")
            return _real(*args, **kwargs)

        monkeypatch.setattr(registry_mod.os, name, wrapped)
    return calls


def test_a_crash_at_any_publishing_step_leaves_current_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = make_registry(tmp_path)
    old = publish(reg, "old")
    with monkeypatch.context() as m:
        steps = _count_steps(m, fail_at=None)
        publish(reg, "probe")
    n_steps = len(steps)
    assert n_steps >= 8, steps  # file fsyncs, manifest write, folder rename, pointer write
    pointer_moved_at = n_steps - 1 - steps[::-1].index("replace")  # the atomic switch of current
    (tmp_path / CURRENT).write_text(old)

    for fail_at in range(n_steps):
        with monkeypatch.context() as m:
            _count_steps(m, fail_at=fail_at)
            try:
                new = publish(reg, f"new{fail_at}")
            except OSError as exc:
                assert "injected failure" in str(exc)
                assert fail_at <= pointer_moved_at, f"publishing failed after current moved (step {fail_at})"
            else:
                # Only the directory fsync after the switch may fail, and then the switch stands.
                assert fail_at > pointer_moved_at, f"publishing survived a failure at step {fail_at}"
                assert reg.current_version() == new
                assert reg.load_current().tag == f"new{fail_at}"
                (tmp_path / CURRENT).write_text(old)
                continue
        assert reg.current_version() == old, f"current moved after a failure at step {fail_at}"
        assert reg.load_current().tag == "old"
        # Never a staging folder or temp pointer left behind; other versions are complete or refused.
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
        for info in reg.list_versions():
            if info.version != old:
                try:
                    assert reg.load(info.version).tag.startswith(("new", "probe"))
                except NoModel:
                    pass


def test_a_write_error_inside_the_writer_leaves_nothing(tmp_path: Path) -> None:
    reg = make_registry(tmp_path)
    old = publish(reg, "old")

    def failing(folder: Path) -> None:
        FakeServing("new").save(folder)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        reg.store(reg.new_version("mf"), failing)
    assert reg.current_version() == old
    assert [v.version for v in reg.list_versions()] == [old]


def test_decide_tolerance_force_and_dataset(tmp_path: Path) -> None:
    reg = make_registry(tmp_path)
    assert reg.decide({"val_rmse": 0.9, "dataset": "ml-100k"}).publish  # first model
    publish(reg, "base", val_rmse=0.90)
    assert reg.decide({"val_rmse": 0.905, "dataset": "ml-100k"}, tolerance=0.01).publish
    worse = reg.decide({"val_rmse": 0.95, "dataset": "ml-100k"}, tolerance=0.01)
    assert not worse.publish and "--force" in worse.reason and "0.9500" in worse.reason
    assert reg.decide({"val_rmse": 0.95, "dataset": "ml-100k"}, force=True).publish
    assert reg.decide({"val_rmse": 0.95, "dataset": "ml-latest-small"}).publish  # not comparable
    assert not reg.decide({"val_rmse": float("nan"), "dataset": "ml-100k"}, force=True).publish


def test_decide_prefers_the_paired_comparison_on_shared_rows(tmp_path: Path) -> None:
    reg = make_registry(tmp_path)
    current = publish(reg, "base", val_rmse=0.83)
    # A luckier validation slice would pass on recorded RMSEs, but on the same rows it is worse.
    paired = {"version": current, "n": 5000, "new_rmse": 0.86, "old_rmse": 0.84}
    held = reg.decide({"val_rmse": 0.80, "dataset": "ml-100k", "compared_with": paired}, tolerance=0.01)
    assert not held.publish and "same 5000 ratings" in held.reason
    # An unluckier slice would fail on recorded RMSEs, but on the same rows it is as good.
    paired = {"version": current, "n": 5000, "new_rmse": 0.845, "old_rmse": 0.84}
    ok = reg.decide({"val_rmse": 0.87, "dataset": "ml-100k", "compared_with": paired}, tolerance=0.01)
    assert ok.publish and "held-out RMSE 0.8450 vs 0.8400" in ok.reason
    # A comparison against a version that is no longer current is ignored.
    stale = {**paired, "version": "20000101T000000Z-mf-000000"}
    assert not reg.decide({"val_rmse": 0.87, "dataset": "ml-100k", "compared_with": stale}).publish


def test_decide_refuses_picks_clearly_worse_than_the_serving_versions(tmp_path: Path) -> None:
    reg = make_registry(tmp_path)
    current = publish(reg, "base", val_rmse=0.83)
    stars_fine = {"version": current, "n": 5000, "new_rmse": 0.84, "old_rmse": 0.84, "ndcg_users": 600}
    worse = {**stars_fine, "new_ndcg": 0.080, "old_ndcg": 0.100}
    held = reg.decide({"val_rmse": 0.84, "dataset": "ml-100k", "compared_with": worse}, tolerance=0.01)
    assert not held.publish
    assert "held-out NDCG@5 0.0800 vs 0.1000" in held.reason and "same 600 users" in held.reason
    assert "--force" in held.reason
    assert reg.decide({"val_rmse": 0.84, "dataset": "ml-100k", "compared_with": worse}, force=True).publish
    # within noise of the serving version's ranking: published, and the reason shows both figures
    close = {**stars_fine, "new_ndcg": 0.095, "old_ndcg": 0.100}
    ok = reg.decide({"val_rmse": 0.84, "dataset": "ml-100k", "compared_with": close}, tolerance=0.01)
    assert ok.publish and "NDCG@5 0.0950 vs 0.1000" in ok.reason


def test_list_and_prune_keep_current(tmp_path: Path) -> None:
    reg = make_registry(tmp_path)
    versions = []
    for i in range(6):
        version = reg.new_version("mf", now=datetime(2026, 1, 1, 0, 0, i, tzinfo=UTC))
        reg.store(version, writer(f"v{i}"))
        versions.append(version)
    reg.set_current(versions[0])  # e.g. a rollback to the oldest
    listed = reg.list_versions()
    assert [v.version for v in listed] == versions
    assert [v.is_current for v in listed] == [True] + [False] * 5
    removed = reg.prune(keep=2)
    assert removed == versions[1:4]
    assert [v.version for v in reg.list_versions()] == [versions[0], *versions[4:]]
    assert reg.load_current().tag == "v0"


def test_version_names_cannot_escape_the_root(tmp_path: Path) -> None:
    reg = make_registry(tmp_path)
    (tmp_path / CURRENT).write_text("../../etc")
    with pytest.raises(NoModel):
        reg.load_current()


# A real crash runs no cleanup at all (no except/finally), unlike the injected exceptions above:
# a child process publishes and SIGKILLs itself at filesystem step N, for every N.
_KILL_AT_STEP = """
import json, os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from tests.recommender.persistence.test_registry import make_registry, writer
from recommender.persistence import registry as registry_mod

root, kill_at = Path(sys.argv[1]), int(sys.argv[2])
calls = []
for name in ("fsync", "replace", "rename"):
    real = getattr(os, name)
    def wrapped(*args, _real=real, **kwargs):
        calls.append(1)
        if len(calls) - 1 == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return _real(*args, **kwargs)
    setattr(registry_mod.os, name, wrapped)
reg = make_registry(root)
version = reg.new_version("mf")
print(version, flush=True)
reg.store(version, writer("new"))
reg.set_current(version)
print("published", len(calls), flush=True)
"""


def test_a_sigkill_at_any_publishing_step_leaves_a_servable_current(tmp_path: Path) -> None:
    import subprocess
    import sys

    project = Path(__file__).resolve().parents[3]
    script = tmp_path / "kill_at_step.py"
    script.write_text(_KILL_AT_STEP)

    def attempt(root: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(script), str(root), str(kill_at), str(project)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    probe = attempt(tmp_path / "probe", 10_000)
    assert probe.returncode == 0, probe.stderr
    n_steps = int(probe.stdout.split()[-1])
    killed = 0
    for kill_at in range(n_steps):
        root = tmp_path / f"run{kill_at}"
        old = publish(make_registry(root), "old")
        proc = attempt(root, kill_at)
        assert proc.returncode == -9, (kill_at, proc.returncode, proc.stderr)
        killed += 1
        new = proc.stdout.split()[0]
        reg = make_registry(root)
        assert reg.current_version() in (old, new)
        model = reg.load_current()  # whichever it is, it is complete
        assert model.tag == ("old" if reg.current_version() == old else "new")
        # Leftovers of the dead run are invisible: no half-written version is ever listed as loadable.
        for info in reg.list_versions():
            if info.version == new:
                reg.load(new)  # listed only once renamed into place, i.e. complete
    assert killed == n_steps >= 8
