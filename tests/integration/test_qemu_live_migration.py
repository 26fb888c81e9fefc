"""Live migration between two QEMU driver objects with their own instance directories
(two hosts that share no storage), real QEMU under TCG and the Novalet test image.

The guest prints a numbered tick every 100 ms on its serial console and writes a
marker into its ephemeral disk before it is moved; the test drives the two
ends as the conductor does (pre_live_migration at B, live_migration at A,
post_live_migration_at_destination at B), then aborts and force-completes the
migration of a guest that dirties its memory faster than the limited bandwidth
copies it.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import re
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from novalet.compute.driver_types import LiveMigrationAborted, MigrationProgress
from novalet.compute.states import PowerState
from novalet.virt.driver import GuestSpec
from novalet.virt.qemu.driver import QemuDriver
from novalet.virt.qemu.layout import EPHEMERAL, InstancePaths
from tests.integration.test_qemu_driver import (READY, GuestImage, make_conf, make_spec,
                                                wait_for)
from tests.integration.test_qemu_driver import test_image as test_image  # noqa: F401

pytestmark = pytest.mark.integration

TICK = re.compile(r"NOVALET-TICK n=(\d+) uptime=([0-9.]+)")
MARK_OFFSET = 64 << 20
DONE = re.compile(r"Live migration of \S+ done in ([0-9.]+)s, downtime (\d+) ms")


def user_data(uuid: str, dirty: bool = False) -> str:
    script = "#!/bin/sh\n"
    # A marker on the raw ephemeral disk (/dev/vdb), where only the disk copy can
    # bring it to the destination's empty disk.
    script += (f"echo NOVALET-MARK-{uuid} | dd of=/dev/vdb bs=1M seek={MARK_OFFSET >> 20} "
               "2>/dev/null; sync\n")
    script += ("(i=0; while :; do i=$((i+1)); read -r up _ </proc/uptime; "
               "echo \"NOVALET-TICK n=$i uptime=$up\"; sleep 0.1; done) >/dev/ttyS0 2>&1 &\n")
    if dirty:  # ~48 MiB of memory rewritten with fresh random bytes, again and again
        script += ("mkdir -p /dev/shm; mount -t tmpfs -o size=64m tmpfs /dev/shm\n"
                   "(while :; do dd if=/dev/urandom of=/dev/shm/x bs=1M count=48 "
                   "2>/dev/null; done) &\n")
    return base64.b64encode(script.encode()).decode()


@pytest.fixture
async def hosts(tmp_path: Path, test_image: GuestImage  # noqa: F811
                ) -> AsyncIterator[tuple[QemuDriver, QemuDriver]]:
    drivers = []
    for name, ports in (("a", "49700:49709"), ("b", "49710:49719")):
        conf = make_conf(tmp_path / name, qemu__live_migration_inbound_addr="127.0.0.1",
                         qemu__live_migration_port_range=ports)
        driver = QemuDriver(conf, test_image.fetcher)
        await driver.init_host(f"host-{name}")
        drivers.append(driver)
    yield drivers[0], drivers[1]
    for driver in drivers:
        for uuid in await _all_guests(driver):
            await driver.destroy(uuid)


async def _all_guests(driver: QemuDriver) -> list[str]:
    return [p.name for p in driver.instances_path.iterdir() if p.name != "_base"]


async def boot(driver: QemuDriver, image: GuestImage, dirty: bool = False) -> GuestSpec:
    spec = make_spec(image.disk, ephemeral_gb=1)
    spec = dataclasses.replace(spec, user_data=user_data(spec.uuid, dirty))
    await driver.spawn(spec)
    await wait_for(driver, spec.uuid, READY, 0)
    await wait_for(driver, spec.uuid, TICK, 3)
    return spec


async def migrate(a: QemuDriver, b: QemuDriver, spec: GuestSpec,
                  reports: list[MigrationProgress], b_name: str = "host-b") -> None:
    """From a to b, as the conductor drives it (up to post_live_migration)."""
    target = await b.pre_live_migration(spec, True, False)

    async def progress(report: MigrationProgress) -> None:
        reports.append(report)

    await a.live_migration(spec.uuid, b_name, True, progress, target)


async def _ignore(report: MigrationProgress) -> None:
    pass


async def until_copying_memory(reports: list[MigrationProgress], task: asyncio.Task[None]
                               ) -> None:
    deadline = time.monotonic() + 60
    while not any(r.memory_processed for r in reports):
        assert not task.done(), "the migration ended before it copied memory"
        assert time.monotonic() < deadline, "no memory copied within 60s"
        await asyncio.sleep(0.05)


def ticks(text: str) -> list[tuple[int, float]]:
    return [(int(m[1]), float(m[2])) for m in TICK.finditer(text)]


def qemu_of(driver: QemuDriver, uuid: str) -> str:
    found = subprocess.run(["pgrep", "-af", str(driver.instances_path / uuid)],
                           capture_output=True, text=True)
    return found.stdout.strip()


def assert_gone(driver: QemuDriver, uuid: str) -> None:
    assert not (driver.instances_path / uuid).exists()
    assert qemu_of(driver, uuid) == ""


def marker_on(disk: Path, tmp_path: Path) -> bytes:
    raw = tmp_path / "eph.raw"
    subprocess.run(["qemu-img", "convert", "-U", "-f", "qcow2", "-O", "raw", str(disk),
                    str(raw)], check=True)
    with raw.open("rb") as handle:
        handle.seek(MARK_OFFSET)
        return handle.read(64)


async def test_a_running_guest_moves_with_its_disks(
        hosts: tuple[QemuDriver, QemuDriver], test_image: GuestImage,  # noqa: F811
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a, b = hosts
    spec = await boot(a, test_image)
    before = ticks(await a.get_console_output(spec.uuid))[-1]
    reports: list[MigrationProgress] = []
    caplog.set_level(logging.INFO, "novalet.virt.qemu.live_moves")
    started = time.monotonic()
    await migrate(a, b, spec, reports)
    await b.post_live_migration_at_destination(spec, False)
    elapsed = time.monotonic() - started
    done = DONE.search(caplog.text)
    assert done, caplog.text
    print(f"\nlive migration of a {spec.memory_mb} MiB guest with a 1 GiB ephemeral disk: "
          f"{float(done[1]) * 1000:.0f} ms in QEMU's job, downtime {done[2]} ms; "
          f"{elapsed * 1000:.0f} ms for all three steps")

    paths = InstancePaths(b.instances_path, spec.uuid)
    assert await b.guests.status(paths) == "running"
    assert (await b.get_info(spec.uuid)).power_state == PowerState.RUNNING
    assert spec.uuid in await b.list_instances()
    await wait_for(b, spec.uuid, TICK, 5)
    after = ticks(await b.get_console_output(spec.uuid))
    assert after[0][0] > before[0] and after[0][1] > before[1]  # counting on, no reboot
    assert not READY.search(await b.get_console_output(spec.uuid))
    assert marker_on(paths.disk(EPHEMERAL), tmp_path).startswith(
        f"NOVALET-MARK-{spec.uuid}".encode())
    assert paths.console_record.exists()  # its VNC display, for consoles here
    assert_gone(a, spec.uuid)
    assert await a.list_instances() == []
    assert reports and reports[-1].memory_total > 0 and reports[-1].memory_remaining == 0
    assert reports[-1].disk_total > 0 and reports[-1].disk_remaining == 0

    # back to A, paused by its user: it arrives paused, and runs on when unpaused
    await b.pause(spec.uuid)
    target = await a.pre_live_migration(spec, True, True)
    await b.live_migration(spec.uuid, "host-a", True, _ignore, target)
    await a.post_live_migration_at_destination(spec, True)
    assert (await a.get_info(spec.uuid)).power_state == PowerState.PAUSED
    assert_gone(b, spec.uuid)
    await a.unpause(spec.uuid)
    await wait_for(a, spec.uuid, TICK, 3)


async def test_abort_then_force_complete_a_guest_dirtying_memory(
        hosts: tuple[QemuDriver, QemuDriver], test_image: GuestImage,  # noqa: F811
        caplog: pytest.LogCaptureFixture) -> None:
    a, b = hosts
    caplog.set_level(logging.INFO, "novalet.virt.qemu.live_migration")
    a.conf.set("qemu", "live_migration_bandwidth", "32")  # MiB/s: slower than it dirties
    spec = await boot(a, test_image, dirty=True)

    reports: list[MigrationProgress] = []
    task = asyncio.create_task(migrate(a, b, spec, reports))
    await until_copying_memory(reports, task)
    await a.live_migration_abort(spec.uuid)
    with pytest.raises(LiveMigrationAborted):
        await asyncio.wait_for(task, 30)
    assert (await a.get_info(spec.uuid)).power_state == PowerState.RUNNING
    seen = len(ticks(await a.get_console_output(spec.uuid)))
    await wait_for(a, spec.uuid, TICK, seen + 3)
    await b.destroy(spec.uuid)  # the conductor's rollback at the destination
    assert_gone(b, spec.uuid)

    reports.clear()
    task = asyncio.create_task(migrate(a, b, spec, reports))
    await until_copying_memory(reports, task)
    started = time.monotonic()
    await a.live_migration_force_complete(spec.uuid)
    await asyncio.wait_for(task, 60)
    print(f"\nforce-complete (pause) of a dirtying guest: done "
          f"{time.monotonic() - started:.2f}s after it was asked")
    await b.post_live_migration_at_destination(spec, False)
    paths = InstancePaths(b.instances_path, spec.uuid)
    assert await b.guests.status(paths) == "running"  # resumed though paused to converge
    await wait_for(b, spec.uuid, TICK, 3)
    assert_gone(a, spec.uuid)

    # back to A in post-copy: force-complete runs it on A while its memory follows
    for driver in (a, b):
        driver.conf.set("qemu", "live_migration_permit_post_copy", "true")
    b.conf.set("qemu", "live_migration_bandwidth", "32")
    reports.clear()
    task = asyncio.create_task(migrate(b, a, spec, reports, "host-a"))
    await until_copying_memory(reports, task)
    started = time.monotonic()
    await b.live_migration_force_complete(spec.uuid)
    await asyncio.wait_for(task, 60)
    assert "switching to post-copy" in caplog.text
    print(f"force-complete (post-copy) of a dirtying guest: done "
          f"{time.monotonic() - started:.2f}s after it was asked")
    await a.post_live_migration_at_destination(spec, False)
    assert await a.guests.status(InstancePaths(a.instances_path, spec.uuid)) == "running"
    await wait_for(a, spec.uuid, TICK, 3)
    assert_gone(b, spec.uuid)
