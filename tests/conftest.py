"""Shared fixtures. Tests never reach the network: see ``_no_network``."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def movielens_root() -> Path:
    """The offline MovieLens copies (``../shared/data/movielens`` or ``$MOVIELENS_TEST_DATA``)."""
    configured = os.environ.get("MOVIELENS_TEST_DATA")
    path = Path(configured) if configured else ROOT.parent / "shared" / "data" / "movielens"
    if not (path / "ml-100k" / "u.data").is_file():
        pytest.fail(
            f"The offline MovieLens copies are missing at {path}. Put the project next to ../shared "
            "(as CI does) or point MOVIELENS_TEST_DATA at a folder holding ml-100k/ and ml-latest-small/.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def movielens_dir() -> Path:
    return movielens_root()


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guard(address: object) -> None:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (
        host in ("localhost", "::1", "") or host.startswith("127.") or host.startswith("/")
    ):
        return
    if isinstance(address, str | bytes):  # AF_UNIX paths
        return
    raise RuntimeError(f"test tried to reach the network ({address!r}); tests must stay offline")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly (never skip) when a test tries to reach anything but loopback."""

    def connect(self: socket.socket, address: object) -> None:
        _guard(address)
        return _real_connect(self, address)

    def connect_ex(self: socket.socket, address: object) -> int:
        _guard(address)
        return _real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host not in (None, "localhost") and not str(host).startswith(("127.", "::1")):
            raise RuntimeError(f"test tried to resolve {host!r}; tests must stay offline")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
