"""Cold migration and resize between two hosts with the real QEMU driver.

Two QemuDriver objects in one process, each with its own state directory (two
hosts sharing no storage), move one test-image guest back and forth as the
conductor orders them (compute/moves.py): the destination prepares and answers a
MoveTarget (relayed as on the bus), the source stops the guest and writes its
disks into the destination's NBD exports, the destination builds the guest.
The tests run in order on that one guest: resize A -> B with confirm, migrate
B -> A with revert, a move whose NBD server died. Its user data writes a token
to its root disk and makes every boot print it with the root disk's size.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from novalet.compute.move_payloads import MoveTarget
from novalet.virt.driver import GuestSpec
from novalet.virt.qemu.cold_migration import DiskCopyFailed, kept_dir
from novalet.virt.qemu.disks import GiB
from novalet.virt.qemu.driver import QemuDriver
from novalet.virt.qemu.layout import InstancePaths
from tests.integration.test_qemu_driver import (GuestImage, make_conf, make_spec,
                                                qemu_pids, test_image, wait_for)

pytestmark = pytest.mark.integration

__all__ = ["test_image"]  # the fixture, shared with test_qemu_driver

TOKEN = re.compile(r"NOVALET-TOKEN (\S+) sectors=(\d+)")
MEMORY = re.compile(r"NOVALET-GUEST-MEMORY mem_kb=(\d+)")
SHOW = 'echo "NOVALET-TOKEN $(cat /root/novalet-token) sectors=$(cat /sys/block/vda/size)"'


def user_data(token: str) -> str:
    script = (f"#!/bin/sh\necho {token} >/root/novalet-token\n"
              f"echo '{SHOW} >/dev/ttyS0' >>/etc/init.d/rcS\nsync\n{SHOW} >/dev/ttyS0\n")
    return base64.b64encode(script.encode()).decode()


@dataclass
class Hosts:
    image: GuestImage
    states: dict[str, Path]
    spec: GuestSpec
    token: str
    timings: dict[str, float] = field(default_factory=dict)

    def driver(self, host: str) -> QemuDriver:
        conf = make_conf(self.states[host], DEFAULT__shutdown_timeout="20",
                         qemu__live_migration_inbound_addr="127.0.0.1",
                         qemu__live_migration_port_range="49400:49419")
        conf.set("DEFAULT", "host", host)
        return QemuDriver(conf, self.image.fetcher)

    def paths(self, host: str) -> InstancePaths:
        return InstancePaths(self.driver(host).instances_path, self.spec.uuid)

    def timed(self, what: str, started: float) -> None:
        self.timings[what] = round(time.monotonic() - started, 2)


def storage_daemons(under: Path) -> set[int]:
    """qemu-storage-daemon processes whose command line names a path under `under`."""
    out = subprocess.run(["pgrep", "-f", "^qemu-storage-daemon"], capture_output=True,
                         text=True)
    pids = set()
    for pid in (int(p) for p in out.stdout.split()):
        try:
            if str(under) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                pids.add(pid)
        except FileNotFoundError:
            continue
    return pids


@pytest.fixture(scope="module")
def hosts(test_image: GuestImage, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Hosts]:
    root = tmp_path_factory.mktemp("cold-migration")
    token = os.urandom(8).hex()
    spec = make_spec(test_image.disk, user_data=user_data(token), ephemeral_gb=1, swap_mb=32)
    world = Hosts(test_image, {"host-a": root / "a", "host-b": root / "b"}, spec, token)

    async def boot() -> None:
        driver = world.driver("host-a")
        await driver.init_host("host-a")
        await world.driver("host-b").init_host("host-b")
        started = time.monotonic()
        await driver.spawn(spec)
        await wait_for(driver, spec.uuid, TOKEN, 0)
        world.timed("boot on host-a", started)

    asyncio.run(boot())
    try:
        yield world
    finally:
        for host in world.states:
            asyncio.run(world.driver(host).destroy(spec.uuid))
            asyncio.run(world.driver(host).confirm_migration(spec.uuid))
        print("\ncold migration timings (s): " + json.dumps(world.timings))
    for state in world.states.values():
        assert qemu_pids(state) == set() and storage_daemons(state) == set()


def disk_info(path: Path) -> dict[str, Any]:
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", "-f", "qcow2", str(path)],
                         capture_output=True, text=True, check=True).stdout
    info: dict[str, Any] = json.loads(out)
    return info


async def prepare(hosts: Hosts, dest: str, spec: GuestSpec) -> MoveTarget:
    """The destination's prep step, its answer relayed as the conductor does."""
    target = await hosts.driver(dest).prepare_move_in(spec)
    return MoveTarget.from_dict(json.loads(json.dumps(target.to_dict()))).check()


async def move(hosts: Hosts, source: str, dest: str, spec: GuestSpec) -> None:
    started = time.monotonic()
    target = await prepare(hosts, dest, spec)
    await hosts.driver(source).migrate_disk_and_power_off(spec.uuid, dest, target)
    hosts.timed(f"{source} -> {dest}: disks moved (guest shut down and copied)", started)
    await hosts.driver(dest).finish_migration(spec, power_on=True)
    hosts.timed(f"{source} -> {dest}: running there", started)


async def seen(driver: QemuDriver, uuid: str, pattern: re.Pattern[str], after: int = 0
               ) -> re.Match[str]:
    """The newest match once more than `after` lines matched."""
    return (await wait_for(driver, uuid, pattern, after))[-1]


async def test_resize_to_another_host_keeps_the_data_and_confirm_drops_the_source(
        hosts: Hosts) -> None:
    a, uuid = hosts.driver("host-a"), hosts.spec.uuid
    before = int((await seen(a, uuid, MEMORY)).group(1))
    bigger = replace(hosts.spec, memory_mb=192, root_gb=2, ephemeral_gb=2)

    await move(hosts, "host-a", "host-b", bigger)

    b = hosts.driver("host-b")
    started = time.monotonic()
    token = await seen(b, uuid, TOKEN)
    hosts.timed("host-b: guest up after finish", started)
    assert token.group(1) == hosts.token  # written on host-a's disk, read on host-b
    assert int(token.group(2)) * 512 == 2 * GiB  # the guest sees its grown root disk
    assert int((await seen(b, uuid, MEMORY)).group(1)) > before + 50 * 1024
    assert uuid in await b.list_instances()
    assert uuid not in await a.list_instances()
    assert qemu_pids(hosts.states["host-a"]) == set()
    assert not (hosts.paths("host-b").dir / "incoming").exists()
    assert storage_daemons(hosts.states["host-b"]) == set()
    assert kept_dir(a.instances_path, uuid).is_dir()
    eph = disk_info(hosts.paths("host-b").disk("disk.eph0"))
    assert eph["virtual-size"] == 2 * GiB and "backing-filename" not in eph
    assert eph["actual-size"] > 1024 * 1024  # the ext4 made on host-a came along

    await a.confirm_migration(uuid)
    assert not kept_dir(a.instances_path, uuid).exists()
    assert not hosts.paths("host-a").dir.exists()
    hosts.spec = bigger


async def test_revert_brings_the_guest_back_unchanged_and_leaves_nothing_at_the_destination(
        hosts: Hosts) -> None:
    b, uuid = hosts.driver("host-b"), hosts.spec.uuid
    pid = b.guests.pid(hosts.paths("host-b"))
    boots = len(TOKEN.findall(await b.get_console_output(uuid)))
    await move(hosts, "host-b", "host-a", hosts.spec)
    a = hosts.driver("host-a")
    assert (await seen(a, uuid, TOKEN)).group(1) == hosts.token

    started = time.monotonic()
    await a.destroy(uuid)  # the destination's revert_move_in
    await b.finish_revert_migration(hosts.spec, power_on=True)
    hosts.timed("revert: running on host-b again", started)
    token = await seen(b, uuid, TOKEN, boots)
    assert token.group(1) == hosts.token and int(token.group(2)) * 512 == 2 * GiB
    assert b.guests.pid(hosts.paths("host-b")) not in (None, pid)
    assert not kept_dir(b.instances_path, uuid).exists()
    assert not hosts.paths("host-a").dir.exists()
    assert qemu_pids(hosts.states["host-a"]) == set()
    assert storage_daemons(hosts.states["host-a"]) == set()


async def test_a_dead_nbd_server_fails_the_move_and_the_guest_stays_at_the_source(
        hosts: Hosts) -> None:
    b, a, uuid = hosts.driver("host-b"), hosts.driver("host-a"), hosts.spec.uuid
    pid = b.guests.pid(hosts.paths("host-b"))
    target = await prepare(hosts, "host-a", hosts.spec)
    server = a.cold_moves.exports.pid(hosts.paths("host-a"))
    assert server is not None
    os.kill(server, signal.SIGKILL)

    with pytest.raises(DiskCopyFailed, match="NBD server does not answer"):
        await b.migrate_disk_and_power_off(uuid, "host-a", target)

    await a.destroy(uuid)
    await b.finish_revert_migration(hosts.spec, power_on=True)
    assert b.guests.pid(hosts.paths("host-b")) == pid  # never stopped
    assert await b.list_instances() == [uuid]
    assert not hosts.paths("host-a").dir.exists()
    assert storage_daemons(hosts.states["host-a"]) == set()


async def test_a_refused_move_keeps_the_running_guest_over_a_stale_resize_copy(
        hosts: Hosts) -> None:
    """Reviewer's B3 and B4 with real processes: B -> A confirmed while B was down
    (B keeps a copy), A -> B; then a resize B -> A that would shrink the root disk
    is refused. The rollback (A's destroy, B's revert) leaves B's running guest as
    it is (never the stale copy), and A's NBD server gone: a retry can prepare there."""
    b, a, uuid = hosts.driver("host-b"), hosts.driver("host-a"), hosts.spec.uuid
    await move(hosts, "host-b", "host-a", hosts.spec)  # never confirmed at host-b
    await move(hosts, "host-a", "host-b", hosts.spec)
    await a.confirm_migration(uuid)
    assert (await seen(b, uuid, TOKEN)).group(1) == hosts.token
    assert kept_dir(b.instances_path, uuid).is_dir()
    pid = b.guests.pid(hosts.paths("host-b"))
    smaller = replace(hosts.spec, root_gb=1)

    target = await prepare(hosts, "host-a", smaller)
    with pytest.raises(DiskCopyFailed, match="would shrink"):
        await b.migrate_disk_and_power_off(uuid, "host-a", target)
    assert not kept_dir(b.instances_path, uuid).exists()
    await a.destroy(uuid)  # the conductor's revert_move_in
    assert storage_daemons(hosts.states["host-a"]) == set()
    await b.finish_revert_migration(hosts.spec, power_on=True)
    assert b.guests.pid(hosts.paths("host-b")) == pid is not None
    assert await b.list_instances() == [uuid]

    await prepare(hosts, "host-a", hosts.spec)  # the retry finds the place free
    await a.destroy(uuid)
    assert storage_daemons(hosts.states["host-a"]) == set()
