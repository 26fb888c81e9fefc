"""The QEMU driver with real QEMU and the Novalet test image (a busybox guest), under TCG.

One guest boots once for the module and every test drives it through a new
QemuDriver object, as a restarted compute service would. Each test leaves it
running. Guests that must start fresh (bad images, direct kernel boot) get
their own. Every QEMU started here is gone when the module ends.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from novalet import config
from novalet.compute.states import PowerState
from novalet.virt.driver import GuestSpec, ImageFetcher, ImageMeta, VirtDriverError
from novalet.virt.qemu.driver import QemuDriver
from novalet.virt.qemu.layout import InstancePaths

pytestmark = pytest.mark.integration

IMAGE_DIR = Path("/tmp/novalet-test-image")
"""Where the test image is built once and kept between runs (the build takes ~10 s)."""

TICKER = b"""#!/bin/sh
(while :; do read -r up _ </proc/uptime; echo "NOVALET-TICK uptime=$up"; sleep 1; done) \\
    >/dev/ttyS0 2>&1 &
"""
READY = re.compile(r"NOVALET-GUEST-READY uuid=(\S+) hostname=(\S+)")
TICK = re.compile(r"NOVALET-TICK uptime=([0-9.]+)")
BOOT_TIMEOUT = 60.0


class FileFetcher(ImageFetcher):
    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    async def fetch(self, image: ImageMeta, dest: str) -> None:
        shutil.copyfile(self.files[image.id], dest)

    async def upload(self, image_id: str, source: str, disk_format: str) -> None:
        raise AssertionError("not used here")


def meta(image_id: str, path: Path, disk_format: str, **props: str) -> ImageMeta:
    data = path.read_bytes()
    return ImageMeta(id=image_id, name=image_id, disk_format=disk_format,
                     container_format="bare", size=len(data), os_hash_algo="sha512",
                     os_hash_value=hashlib.sha512(data).hexdigest(),
                     checksum=hashlib.md5(data).hexdigest(), properties=dict(props))


@dataclass
class GuestImage:
    fetcher: FileFetcher
    disk: ImageMeta
    kernel_boot: ImageMeta
    tmp: Path


@pytest.fixture(scope="module")
def test_image(tmp_path_factory: pytest.TempPathFactory) -> GuestImage:
    testimage = pytest.importorskip("novalet.image.testimage")
    if not (shutil.which("qemu-system-x86_64") and shutil.which("qemu-img")):
        pytest.skip("QEMU is not installed (apt-get install qemu-system-x86 qemu-utils)")
    try:
        disk = testimage.build_test_image(IMAGE_DIR / "novalet-tiny.qcow2", progress=lambda _: None)
    except testimage.BuildError as exc:
        pytest.skip(f"cannot build the test image: {exc}")
    tmp = tmp_path_factory.mktemp("junk")
    junk = tmp / "junk.qcow2"
    junk.write_bytes(b"<html><body>502 Bad Gateway</body></html>\n" * 50)
    fetcher = FileFetcher({"tiny": disk, "kernel": testimage.kernel_path(disk),
                           "ramdisk": testimage.ramdisk_path(disk), "junk": junk})
    props = testimage.image_properties()
    return GuestImage(fetcher, meta("tiny", disk, "qcow2", **props),
                     meta("tiny", disk, "qcow2",
                          **testimage.direct_boot_properties("kernel", "ramdisk")), tmp)


def make_conf(state: Path, **options: str) -> config.Config:
    conf = config.Config()
    conf.set("DEFAULT", "state_path", str(state))
    conf.set("DEFAULT", "host", "integration-host")
    conf.set("qemu", "virt_type", "auto")
    for key, value in options.items():
        section, name = key.split("__")
        conf.set(section, name, value)
    return conf


def make_spec(image: ImageMeta, **overrides: Any) -> GuestSpec:
    uuid = str(uuidlib.uuid4())
    values: dict[str, Any] = dict(
        uuid=uuid, name=f"guest-{uuid[:8]}", hostname=f"guest-{uuid[:8]}", vcpus=1,
        memory_mb=128, root_gb=1, ephemeral_gb=0, swap_mb=0, image_ref=image.id,
        image=image, user_data=base64.b64encode(TICKER).decode(),
        key_data="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE3xN0vAlEt integration",
        key_name="integration", project_id="project-1", availability_zone="nova",
        config_drive=True)  # these guests have no metadata service: user_data, keys
    values.update(overrides)
    return GuestSpec(**values)


async def console(driver: QemuDriver, uuid: str) -> str:
    return await driver.get_console_output(uuid)


async def wait_for(driver: QemuDriver, uuid: str, pattern: re.Pattern[str], after: int,
                   timeout: float = BOOT_TIMEOUT) -> list[re.Match[str]]:
    """Wait until pattern has matched more than `after` times; all the matches."""
    deadline = time.monotonic() + timeout
    while True:
        matches = list(pattern.finditer(await console(driver, uuid)))
        if len(matches) > after:
            return matches
        if time.monotonic() > deadline:
            tail = (await console(driver, uuid))[-3000:]
            raise AssertionError(f"no new {pattern.pattern!r} within {timeout}s:\n{tail}")
        await asyncio.sleep(0.1)


async def count(driver: QemuDriver, uuid: str, pattern: re.Pattern[str]) -> int:
    return len(pattern.findall(await console(driver, uuid)))


def qemu_pids(under: Path) -> set[int]:
    """QEMU processes whose command line names a path under `under` (ours, not others')."""
    out = subprocess.run(["pgrep", "-x", "qemu-system-x86"], capture_output=True, text=True)
    pids = set()
    for pid in (int(p) for p in out.stdout.split()):
        try:
            if str(under) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                pids.add(pid)
        except FileNotFoundError:
            continue
    return pids


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


@dataclass
class Booted:
    conf: config.Config
    spec: GuestSpec
    image: GuestImage
    pid: int
    timings: dict[str, float]

    def driver(self) -> QemuDriver:
        """A new driver, as a freshly started compute service has."""
        return QemuDriver(self.conf, self.image.fetcher)

    @property
    def paths(self) -> InstancePaths:
        return InstancePaths(self.driver().instances_path, self.spec.uuid)


@pytest.fixture(scope="module")
def booted(test_image: GuestImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Booted]:
    state = tmp_path_factory.mktemp("qemu-driver") / "state"
    conf = make_conf(state, DEFAULT__shutdown_timeout="30", qemu__reboot_timeout="30")
    spec = make_spec(test_image.disk)
    timings: dict[str, float] = {}

    async def boot() -> int:
        driver = QemuDriver(conf, test_image.fetcher)
        await driver.init_host("integration-host")
        started = time.monotonic()
        await driver.spawn(spec)
        timings["spawn (qemu running)"] = time.monotonic() - started
        await wait_for(driver, spec.uuid, READY, 0)
        timings["spawn to guest ready"] = time.monotonic() - started
        pid = driver.guests.pid(InstancePaths(driver.instances_path, spec.uuid))
        assert pid is not None
        return pid

    guest = Booted(conf, spec, test_image, asyncio.run(boot()), timings)
    try:
        yield guest
    finally:
        asyncio.run(guest.driver().destroy(spec.uuid))
        print("\nQEMU driver timings: " + json.dumps(
            {k: round(v, 2) for k, v in timings.items()}))
    assert qemu_pids(state) == set()
    assert not (state / "instances" / spec.uuid).exists()


# --- the shared guest, in order ------------------------------------------------------------


async def test_the_guest_booted_with_its_metadata_and_nova_smbios(booted: Booted) -> None:
    driver = booted.driver()
    uuid = booted.spec.uuid
    assert (await driver.get_info(uuid)).power_state == PowerState.RUNNING
    argv = cmdline(booted.pid)
    assert argv[argv.index("-uuid") + 1] == uuid
    smbios = argv[argv.index("-smbios") + 1]
    assert "product=OpenStack Nova" in smbios and f"uuid={uuid}" in smbios
    assert "-accel" in argv and argv[argv.index("-accel") + 1].startswith(
        ("tcg,tb-size=", "kvm"))
    out = await console(driver, uuid)
    ready = READY.search(out)
    assert ready is not None and ready.groups() == (uuid, booted.spec.hostname)
    assert "metadata from the config drive" in out
    assert "installed 1 public key(s) for root" in out
    await wait_for(driver, uuid, TICK, 0)


async def test_the_vnc_display_answers(booted: Booted) -> None:
    vnc = await booted.driver().get_console(booted.spec.uuid, "vnc")
    with socket.create_connection((vnc.host, vnc.port), timeout=5) as conn:
        assert conn.recv(12).startswith(b"RFB 003.")


async def test_a_new_driver_controls_the_same_qemu(booted: Booted) -> None:
    driver = booted.driver()
    await driver.init_host("integration-host")
    assert booted.spec.uuid in await driver.list_instances()
    paths = InstancePaths(driver.instances_path, booted.spec.uuid)
    assert driver.guests.pid(paths) == booted.pid
    assert (await driver.get_info(booted.spec.uuid)).power_state == PowerState.RUNNING


async def test_diagnostics_are_measured(booted: Booted) -> None:
    """Real figures: the vCPU threads' time, QEMU's resident memory, the disks the
    guest read at boot, how long its QEMU has run."""
    driver, uuid = booted.driver(), booted.spec.uuid
    await driver.init_host("integration-host")
    diags = await driver.get_diagnostics(uuid)
    assert (diags.state, diags.driver) == ("running", "libvirt")
    assert diags.hypervisor in ("qemu", "kvm") and diags.config_drive is True
    assert len(diags.cpu_details) == booted.spec.vcpus
    assert all(c.time is not None and c.time > 0 for c in diags.cpu_details)
    assert diags.memory_details.maximum == booted.spec.memory_mb
    assert 0 < (diags.memory_details.used or 0) <= booted.spec.memory_mb
    root = next(d for d in diags.disk_details if d.name == "root")
    assert (root.read_bytes or 0) > 0 and (root.read_requests or 0) > 0
    assert diags.uptime is not None and diags.uptime >= 0


async def test_pause_freezes_the_guest_and_unpause_thaws_it(booted: Booted) -> None:
    driver, uuid = booted.driver(), booted.spec.uuid
    await driver.pause(uuid)
    assert (await driver.get_info(uuid)).power_state == PowerState.PAUSED
    ticks = await count(driver, uuid, TICK)
    await asyncio.sleep(2.5)
    assert await count(driver, uuid, TICK) == ticks
    await driver.unpause(uuid)
    assert (await driver.get_info(uuid)).power_state == PowerState.RUNNING
    await wait_for(driver, uuid, TICK, ticks, timeout=10)


async def test_suspend_and_resume_keep_the_guest_alive(booted: Booted) -> None:
    driver, uuid = booted.driver(), booted.spec.uuid
    before = await wait_for(driver, uuid, TICK, 0)
    readies = await count(driver, uuid, READY)
    started = time.monotonic()
    await driver.suspend(uuid)
    booted.timings["suspend"] = time.monotonic() - started
    assert (await driver.get_info(uuid)).power_state == PowerState.SUSPENDED
    assert booted.paths.state.exists() and driver.guests.pid(booted.paths) is None
    started = time.monotonic()
    await booted.driver().resume(uuid)
    booted.timings["resume"] = time.monotonic() - started
    assert (await driver.get_info(uuid)).power_state == PowerState.RUNNING
    after = await wait_for(driver, uuid, TICK, len(before), timeout=10)
    # The same boot goes on: uptime continues and the guest did not boot again.
    assert float(after[-1].group(1)) > float(before[-1].group(1))
    assert await count(driver, uuid, READY) == readies
    assert not booted.paths.state.exists()
    new_pid = driver.guests.pid(booted.paths)
    assert new_pid is not None
    booted.pid = new_pid


async def test_a_live_snapshot_is_a_standalone_qcow2(booted: Booted) -> None:
    dest = booted.image.tmp / "snapshot.qcow2"
    started = time.monotonic()
    assert await booted.driver().snapshot(booted.spec.uuid, str(dest)) == "qcow2"
    booted.timings["live snapshot"] = time.monotonic() - started
    info = json.loads(subprocess.run(
        ["qemu-img", "info", "--output=json", "-f", "qcow2", str(dest)],
        capture_output=True, text=True, check=True).stdout)
    assert "backing-filename" not in info and info["virtual-size"] == 1 << 30
    assert (await booted.driver().get_info(booted.spec.uuid)).power_state == PowerState.RUNNING


async def test_power_off_by_acpi_then_power_on(booted: Booted) -> None:
    driver, uuid = booted.driver(), booted.spec.uuid
    readies = await count(driver, uuid, READY)
    started = time.monotonic()
    await driver.power_off(uuid, timeout=30)
    booted.timings["power off (ACPI)"] = time.monotonic() - started
    assert time.monotonic() - started < 25, "the guest should power off by itself"
    assert (await driver.get_info(uuid)).power_state == PowerState.SHUTDOWN
    assert booted.paths.disk("disk").exists()
    started = time.monotonic()
    await booted.driver().power_on(uuid)
    booted.timings["power on (qemu running)"] = time.monotonic() - started
    assert (await driver.get_info(uuid)).power_state == PowerState.RUNNING
    await wait_for(driver, uuid, READY, readies)


async def test_soft_and_hard_reboot(booted: Booted) -> None:
    driver, uuid = booted.driver(), booted.spec.uuid
    readies = await wait_for(driver, uuid, READY, 0)
    started = time.monotonic()
    await driver.reboot(uuid, hard=False)
    booted.timings["soft reboot (qemu running again)"] = time.monotonic() - started
    await wait_for(driver, uuid, READY, len(readies))
    started = time.monotonic()
    await driver.reboot(uuid, hard=True)
    booted.timings["hard reboot (qemu running again)"] = time.monotonic() - started
    await wait_for(driver, uuid, READY, len(readies) + 1)


async def test_resize_changes_the_memory_the_guest_sees_and_revert_restores_it(
        booted: Booted) -> None:
    driver, uuid = booted.driver(), booted.spec.uuid
    memory = re.compile(r"NOVALET-GUEST-MEMORY mem_kb=(\d+)")
    seen = await wait_for(driver, uuid, memory, 0)
    await driver.resize(uuid, replace(booted.spec, memory_mb=192, root_gb=2))
    bigger = await wait_for(driver, uuid, memory, len(seen))
    assert int(bigger[-1].group(1)) > int(seen[-1].group(1)) + 50 * 1024
    await driver.revert_resize(uuid)
    back = await wait_for(driver, uuid, memory, len(bigger))
    assert abs(int(back[-1].group(1)) - int(seen[-1].group(1))) < 1024
    assert not booted.paths.resize.exists()


async def test_rescue_boots_the_rescue_image_and_unrescue_the_guest_again(
        booted: Booted) -> None:
    driver, uuid = booted.driver(), booted.spec.uuid
    readies = await wait_for(driver, uuid, READY, 0)
    await driver.rescue(uuid, booted.spec)
    argv = cmdline(driver.guests.pid(booted.paths) or 0)
    assert any(a.startswith("virtio-blk-pci,drive=rescue") for a in argv)
    await wait_for(driver, uuid, READY, len(readies))
    await driver.unrescue(uuid)
    argv = cmdline(driver.guests.pid(booted.paths) or 0)
    assert not any(a.startswith("virtio-blk-pci,drive=rescue") for a in argv)
    assert not booted.paths.rescue_config.exists()
    assert (await driver.get_info(uuid)).power_state == PowerState.RUNNING


# --- guests of their own ----------------------------------------------------------------------


@pytest.fixture
def own_state(tmp_path: Path) -> Iterator[Path]:
    state = tmp_path / "state"
    yield state
    leaked = qemu_pids(state)
    for pid in leaked:
        os.kill(pid, 9)
    assert not leaked, f"QEMU processes left running: {leaked}"


async def test_direct_kernel_boot_and_the_smbios_uuid(test_image: GuestImage,
                                                      own_state: Path) -> None:
    # No config drive and no NIC: the guest can only learn its uuid from SMBIOS.
    conf = make_conf(own_state, qemu__network="none")
    driver = QemuDriver(conf, test_image.fetcher)
    await driver.init_host("integration-host")
    spec = make_spec(test_image.kernel_boot, config_drive=False)
    await driver.spawn(spec)
    try:
        argv = cmdline(driver.guests.pid(InstancePaths(driver.instances_path, spec.uuid)) or 0)
        assert "-kernel" in argv and "-initrd" in argv
        ready = await wait_for(driver, spec.uuid, READY, 0)
        assert ready[0].group(1) == spec.uuid
        assert "metadata from the config drive" not in await console(driver, spec.uuid)
    finally:
        await driver.destroy(spec.uuid)
    assert not (driver.instances_path / spec.uuid).exists()


async def test_a_guest_deaf_to_acpi_is_stopped_by_force(test_image: GuestImage,
                                                        own_state: Path) -> None:
    driver = QemuDriver(make_conf(own_state), test_image.fetcher)
    await driver.init_host("integration-host")
    spec = make_spec(test_image.disk)
    await driver.spawn(spec)
    try:
        # Still in the firmware: nothing listens to the power button yet.
        started = time.monotonic()
        await driver.power_off(spec.uuid, timeout=1)
        assert 0.9 < time.monotonic() - started < 10
        assert (await driver.get_info(spec.uuid)).power_state == PowerState.SHUTDOWN
    finally:
        await driver.destroy(spec.uuid)


@pytest.mark.parametrize("what", ["not a disk image", "corrupted checksum"])
async def test_bad_image_data_fails_the_spawn_and_leaks_nothing(
        test_image: GuestImage, own_state: Path, what: str) -> None:
    driver = QemuDriver(make_conf(own_state), test_image.fetcher)
    await driver.init_host("integration-host")
    if what == "not a disk image":
        image = meta("junk", test_image.fetcher.files["junk"], "qcow2")
        expected = "declared qcow2 but its data is raw"
    else:
        image = replace(test_image.disk, os_hash_value="0" * 128)
        expected = "does not match its sha512 checksum"
    spec = make_spec(image)
    with pytest.raises(VirtDriverError, match=expected):
        await driver.spawn(spec)
    assert not (driver.instances_path / spec.uuid).exists()
    assert await driver.list_instances() == []
    assert [p.name for p in driver.cache.path.iterdir()] == []


async def test_destroy_returns_once_qemu_is_gone_and_its_display_is_free(
        test_image: GuestImage, own_state: Path) -> None:
    """bench/boot_real.py: a copy of a just-deleted guest could not bind the display
    port, still held by the exiting QEMU. Destroy returns only when QEMU is gone."""
    driver = QemuDriver(make_conf(own_state), test_image.fetcher)
    await driver.init_host("integration-host")
    spec = make_spec(test_image.disk)
    await driver.spawn(spec)
    try:
        await wait_for(driver, spec.uuid, READY, 0)
        display = await driver.get_console(spec.uuid, "vnc")
        pid = driver.guests.pid(InstancePaths(driver.instances_path, spec.uuid))
        assert pid is not None
    finally:
        await driver.destroy(spec.uuid)
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_text().rpartition(")")[2].split()[0] in "ZX"
    # The display port is free of this QEMU: bound as QEMU binds (SO_REUSEADDR: an
    # earlier test's console connections may linger in TIME_WAIT), or, when some
    # other program listens there now, not by this pid.
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            again.bind((display.host, display.port))
        except OSError:
            listeners = subprocess.run(["ss", "-Hltnp", f"sport = :{display.port}"],
                                       capture_output=True, text=True, check=True).stdout
            assert listeners and f"pid={pid}," not in listeners, listeners
