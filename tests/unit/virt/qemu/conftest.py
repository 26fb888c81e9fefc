"""Fixtures for the QEMU driver's unit tests; any real subprocess is an error here."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import uuid as uuidlib
from pathlib import Path
from typing import Any

import pytest

from novalet import config
from novalet.virt.driver import GuestSpec, ImageMeta
from novalet.virt.qemu import consoles
from novalet.virt.qemu.driver import QemuDriver
from tests.unit.virt.qemu.fakes import DirFetcher, FakeProcesses, FakeQmp, FakeRunner, qcow2_header

IMAGE_SIZE = 64 * 1024 * 1024


@pytest.fixture(autouse=True)
def _no_subprocesses(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit test that starts a program by accident fails (unless it asks for real ones)."""
    if "real_programs" in request.fixturenames:
        return

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"unit test tried to run a program: {args[:1]}")

    monkeypatch.setattr(asyncio, "create_subprocess_exec", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)


@pytest.fixture(autouse=True)
def _no_port_probes(monkeypatch: pytest.MonkeyPatch) -> set[tuple[str, int]]:
    """Console ports are free unless a test adds (host, port) to this set; no real bind."""
    busy: set[tuple[str, int]] = set()
    monkeypatch.setattr(consoles, "can_bind", lambda host, port: (host, port) not in busy)
    return busy


@pytest.fixture
def real_programs() -> None:
    """Lets a test of the command door itself run harmless programs (sh, sleep)."""


@pytest.fixture
def runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def processes() -> FakeProcesses:
    return FakeProcesses()


@pytest.fixture
def qmp(processes: FakeProcesses) -> FakeQmp:
    return FakeQmp(processes)


@pytest.fixture
def image_file(tmp_path: Path) -> Path:
    path = tmp_path / "image.qcow2"
    path.write_bytes(qcow2_header(IMAGE_SIZE) + b"data" * 1000)
    return path


@pytest.fixture
def image(image_file: Path) -> ImageMeta:
    data = image_file.read_bytes()
    return ImageMeta(id="img-1", name="tiny", disk_format="qcow2", container_format="bare",
                     size=len(data), os_hash_algo="sha512",
                     os_hash_value=hashlib.sha512(data).hexdigest(),
                     checksum=hashlib.md5(data).hexdigest())


@pytest.fixture
def fetcher(image_file: Path) -> DirFetcher:
    return DirFetcher({"img-1": image_file})


@pytest.fixture
def conf(tmp_path: Path) -> config.Config:
    conf = config.Config()
    conf.set("DEFAULT", "state_path", str(tmp_path / "state"))
    conf.set("DEFAULT", "host", "host-1")
    conf.set("qemu", "virt_type", "qemu")
    conf.set("DEFAULT", "shutdown_timeout", "0.05")
    conf.set("qemu", "reboot_timeout", "0.05")
    return conf


@pytest.fixture
def make_driver(conf: config.Config, fetcher: DirFetcher, runner: FakeRunner,
                processes: FakeProcesses, qmp: FakeQmp) -> Any:
    def make() -> QemuDriver:
        return QemuDriver(conf, fetcher, runner=runner, processes=processes, connect=qmp)
    return make


@pytest.fixture
async def driver(make_driver: Any, monkeypatch: pytest.MonkeyPatch) -> QemuDriver:
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    drv: QemuDriver = make_driver()
    await drv.init_host("host-1")
    return drv


def make_spec(image: ImageMeta | None, **overrides: Any) -> GuestSpec:
    values: dict[str, Any] = dict(
        uuid=str(uuidlib.uuid4()), name="vm-1", hostname="vm-1", vcpus=1, memory_mb=128,
        root_gb=1, ephemeral_gb=0, swap_mb=0, image_ref=image.id if image else "img-1",
        image=image, user_data=None, key_data="ssh-ed25519 AAAA test", key_name="key-1",
        metadata={"role": "test"}, project_id="project-1", availability_zone="nova",
        config_drive=True)  # asked for: most tests look at the drive
    values.update(overrides)
    return GuestSpec(**values)
