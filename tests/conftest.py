"""Fixtures shared by every test layer."""

from __future__ import annotations

import shutil
import socket
import sys
import time
from pathlib import Path

import pytest

from novalet.image import testimage
from novalet.image.testimage import builder


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def _no_network(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit and functional tests must not reach past loopback by accident."""
    if request.node.get_closest_marker("integration"):
        return
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (host.startswith("127.") or host in (
                "localhost", "::1") or host.startswith("/")):
            raise RuntimeError(f"test tried to reach {address}")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def guest_image(request: pytest.FixtureRequest) -> Path:
    """The built image, reused while this package's recipe is unchanged."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
    cache = Path(request.config.cache.mkdir("novalet-testimage"))
    digest = builder.recipe_digest()
    for stale in cache.iterdir():
        if stale.is_dir() and stale.name not in (digest, "debs"):
            shutil.rmtree(stale, ignore_errors=True)
    output = cache / digest / f"{testimage.IMAGE_NAME}.qcow2"
    started = time.monotonic()
    testimage.build_test_image(output, progress=lambda line: print(line, file=sys.stderr),
                               cache_dir=cache / "debs")
    print(f"test image ready in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return output
