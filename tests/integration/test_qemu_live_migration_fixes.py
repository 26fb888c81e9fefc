"""Reproducers, with real QEMU under TCG, of two live migration bugs: a guest that
arrived but whose finish never ran was deleted by the destination's next start
(B1), and a standalone root disk (as a cold move leaves it) mirrored with
`sync: top` read the base image's old bytes at the destination where it reads
zeros (M1)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from novalet.compute.driver_types import MigrationProgress
from novalet.compute.states import PowerState
from novalet.virt.qemu import migration_ports
from novalet.virt.qemu.driver import QemuDriver
from novalet.virt.qemu.layout import InstancePaths
from tests.integration.test_qemu_driver import GuestImage, wait_for
from tests.integration.test_qemu_driver import test_image as test_image  # noqa: F401
from tests.integration.test_qemu_live_migration import TICK, _ignore, assert_gone, boot, ticks
from tests.integration.test_qemu_live_migration import hosts as hosts  # noqa: F401

pytestmark = pytest.mark.integration
MiB = 1 << 20


async def test_b1_a_guest_that_arrived_survives_a_restart_of_its_new_host(
        hosts: tuple[QemuDriver, QemuDriver], test_image: GuestImage) -> None:  # noqa: F811
    """The source let its copy go once QEMU said completed; the destination's finish
    never ran (it failed, or timed out): its next start keeps the guest."""
    a, b = hosts
    spec = await boot(a, test_image)
    target = await b.pre_live_migration(spec, True, False)
    await a.live_migration(spec.uuid, "host-b", True, _ignore, target)
    assert_gone(a, spec.uuid)
    assert await b.list_instances() == []  # not finished: not b's yet

    restarted = QemuDriver(b.conf, test_image.fetcher)
    await restarted.init_host("host-b")
    assert await restarted.list_instances() == [spec.uuid]
    assert (await restarted.get_info(spec.uuid)).power_state == PowerState.RUNNING
    seen = len(ticks(await restarted.get_console_output(spec.uuid)))
    await wait_for(restarted, spec.uuid, TICK, seen + 3)  # still counting, not rebooted
    assert target.nbd_port is not None
    with pytest.raises(OSError):  # its NBD server is stopped
        socket.create_connection((target.address, target.nbd_port), timeout=2).close()
    paths = InstancePaths(restarted.instances_path, spec.uuid)
    assert paths.console_record.exists() and not paths.spawning.exists()


def _free_ports(count: int) -> int:
    """The first of `count` consecutive ports free on 127.0.0.1 (from 52000 up)."""
    for first in range(52000, 60000, count):
        if all(migration_ports.can_bind("127.0.0.1", p) for p in range(first, first + count)):
            return first
    raise AssertionError("no free port block")


def _raw(disk: Path, out: Path) -> Path:
    subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", str(disk), str(out)],
                   check=True)
    return out


def _last_data_mib(raw: Path) -> int:
    """The last MiB of an image that holds anything but zeros (not the first)."""
    found = 1
    with raw.open("rb") as handle:
        index = 0
        while chunk := handle.read(MiB):
            if index and chunk.count(0) != len(chunk):
                found = index
            index += 1
    return found


async def test_m1_a_standalone_root_reads_the_same_after_a_live_migration(
        hosts: tuple[QemuDriver, QemuDriver], test_image: GuestImage,  # noqa: F811
        tmp_path: Path) -> None:
    """The root made standalone with a zeroed region where the image has data (its
    zeros unallocated, as a cold move's `qemu-img convert` leaves them): the
    destination must read zeros there too, not the base image's bytes."""
    a, b = hosts
    spec = await boot(a, test_image)
    await a.power_off(spec.uuid, 0)
    disk = InstancePaths(a.instances_path, spec.uuid).disk("disk")
    base = a.cache.path / spec.image_ref  # where the destination's overlay reads through
    hole = _last_data_mib(_raw(base, tmp_path / "base.raw"))
    raw = _raw(disk, tmp_path / "root.raw")
    with raw.open("r+b") as handle:
        handle.seek(hole * MiB)
        handle.write(bytes(MiB))
    standalone = tmp_path / "root.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw),
                    str(standalone)], check=True)
    standalone.replace(disk)
    await a.power_on(spec.uuid)

    reports: list[MigrationProgress] = []

    async def progress(report: MigrationProgress) -> None:
        reports.append(report)

    target = await b.pre_live_migration(spec, True, False)
    assert target.overlays == ["root"]  # b's root is an overlay over the image
    await a.live_migration(spec.uuid, "host-b", True, progress, target)
    await b.post_live_migration_at_destination(spec, False)
    moved = _raw(InstancePaths(b.instances_path, spec.uuid).disk("disk"),
                 tmp_path / "moved.raw")
    with moved.open("rb") as handle:
        handle.seek(hole * MiB)
        assert handle.read(MiB) == bytes(MiB), f"MiB {hole} reads the base image's bytes"


async def test_ports_taken_between_the_claim_and_qemus_bind_are_retried(
        hosts: tuple[QemuDriver, QemuDriver], test_image: GuestImage,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another program binds the claimed NBD and migration ports just before QEMU does:
    QEMU refuses nbd-server-start and migrate-incoming, and takes them again on other
    ports (QEMU lets a refused migrate-incoming be asked again)."""
    a, b = hosts
    spec = await boot(a, test_image)
    first = _free_ports(4)  # b's range, on ports no other test uses now
    b.migration_ports.first, b.migration_ports.last = first, first + 3
    monkeypatch.setattr(migration_ports, "can_bind", lambda host, port: True)  # the race
    squatters = []
    for port in (first, first + 2):  # b's first NBD and first migration claims
        squatter = socket.socket()
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        squatters.append(squatter)
    try:
        target = await b.pre_live_migration(spec, True, False)
    finally:
        for squatter in squatters:
            squatter.close()
    assert (target.nbd_port, target.memory_port) == (first + 1, first + 3)
    await a.live_migration(spec.uuid, "host-b", True, _ignore, target)
    await b.post_live_migration_at_destination(spec, False)
    seen = len(ticks(await b.get_console_output(spec.uuid)))
    await wait_for(b, spec.uuid, TICK, seen + 2)
