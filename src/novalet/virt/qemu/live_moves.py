"""Live migration in the QEMU driver: both ends, as the conductor calls them.

Destination (pre_live_migration): the instance directory with the guest's disks
made anew (the root as an overlay over this host's copy of the same base image,
ephemeral and swap empty at their size, the config drive regenerated from the
spec), domain.json written, and a QEMU started with `-incoming defer` (without
-S: it runs the guest the moment the stream ends). On it, an NBD server exports
the writable disks (export name = drive id) and `migrate-incoming` listens; both
on ports claimed from [qemu] live_migration_port_range, answered as a MoveTarget.
Until post_live_migration_at_destination the directory is marked `spawning`:
the guest isn't this host's yet (list_instances skips it, a restarted compute
removes it, destroy removes it and its QEMU).

Source (live_migration): live_migration.SourceMigration over the guest's QMP
socket; once done its QEMU quits and its directory goes. Abort and
force-complete don't wait for the guest's lock, which the job holds: they reach
the job through its MigrationControl.

Hosts here never share their instance directories, so a live migration without
block migration is refused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from novalet.compute.driver_types import GuestSpec
from novalet.compute.move_payloads import MoveTarget
from novalet.virt.driver import VirtDriverError
from novalet.virt.qemu.layout import EPHEMERAL, SWAP, GuestConfig, InstancePaths
from novalet.virt.qemu.live_migration import (MigrationControl, MigrationSettings, Progress,
                                              SourceMigration, cancel_orphan, migration_uri)
from novalet.virt.qemu.migration_ports import inbound_address
from novalet.virt.qemu.monitor import Monitor

if TYPE_CHECKING:
    from novalet.virt.qemu.driver import QemuDriver

LOG = logging.getLogger(__name__)

INCOMING_TIMEOUT = 60.0
"""Seconds post_live_migration_at_destination waits for the last state to land."""
EXPORT_PREFIX = "migrate-"


class SharedStorageRequired(VirtDriverError):
    msg_fmt = ("Live migration of %(uuid)s without block migration needs an instance "
               "directory shared by both hosts, and QEMU hosts here don't share theirs; "
               "use block migration (block_migration true or auto)")
    code = 400


class NoLiveMigration(VirtDriverError):
    msg_fmt = "No live migration of %(uuid)s is running on this host"
    code = 409


class LiveMoves:
    """The driver's live migration calls (see the module's doc)."""

    def __init__(self, driver: QemuDriver) -> None:
        self.driver = driver
        self.ports = driver.migration_ports
        self.running: dict[str, MigrationControl] = {}

    # --- destination -------------------------------------------------------------

    async def prepare(self, spec: GuestSpec, block_migration: bool) -> MoveTarget:
        if not block_migration:
            raise SharedStorageRequired(uuid=spec.uuid)
        drv = self.driver
        paths = drv._paths(spec.uuid)
        async with drv._lock(spec.uuid):
            await drv._ensure_accel()
            async with drv.new_guest_dir(paths, "Preparing to take"):  # its ports freed too
                return await self._listen(spec, paths)

    async def _listen(self, spec: GuestSpec, paths: InstancePaths) -> MoveTarget:
        guest_config = await self._incoming_disks(spec, paths)
        disks = [d.id for d in guest_config.disks if d.device == "disk" and not d.readonly]
        root = guest_config.disk("root")
        overlays = ["root"] if root is not None and await self._is_overlay(Path(root.path)) \
            else []
        address = inbound_address(self.driver.conf)
        memory_port, nbd_port = self.ports.claim(spec.uuid, address, 2)
        await self.driver.guests.start_incoming(paths, guest_config)
        async with self.driver.guests.connect(paths.qmp) as mon:
            await self._set_incoming_capabilities(mon, spec.uuid)
            if disks:
                await _export(mon, address, nbd_port, disks)
            await mon.execute("migrate-incoming", {"uri": migration_uri(address, memory_port)})
        LOG.info("Waiting for %s on %s (memory port %d, disks %s on NBD port %d)",
                 spec.uuid, address, memory_port, disks, nbd_port)
        return MoveTarget(address=address, memory_port=memory_port,
                          nbd_port=nbd_port if disks else None, disks=disks,
                          overlays=overlays).check()

    async def _incoming_disks(self, spec: GuestSpec, paths: InstancePaths) -> GuestConfig:
        """The disks as spawn makes them, but ephemeral and swap empty (their data,
        file system included, comes from the source)."""
        drv = self.driver
        guest_config = await drv._create_disks(spec, paths)
        for name in (EPHEMERAL, SWAP):
            path = paths.disk(name)
            if path.exists():
                size = (await drv.disks.info(path, "qcow2")).virtual_size
                path.unlink()
                await drv.disks.create_blank(path, "qcow2", size)
        return guest_config

    async def _is_overlay(self, path: Path) -> bool:
        info = await self.driver.disks.info(path, "qcow2")
        return info.backing_file is not None

    async def _set_incoming_capabilities(self, mon: Monitor, uuid: str) -> None:
        caps = [{"capability": "events", "state": True}]
        await mon.execute("migrate-set-capabilities", {"capabilities": caps})
        if self.driver.conf.get("qemu", "live_migration_permit_post_copy"):
            try:
                await mon.execute("migrate-set-capabilities", {"capabilities": [
                    {"capability": "postcopy-ram", "state": True}]})
            except VirtDriverError as exc:
                LOG.warning("Incoming %s: QEMU refuses post-copy here (%s)", uuid, exc)

    async def finish(self, spec: GuestSpec, paused: bool) -> None:
        """The guest arrived: it runs (or stays paused), it is this host's."""
        drv = self.driver
        paths = drv._require(spec.uuid)
        async with drv._lock(spec.uuid):
            async with drv._session(paths) as mon:
                await _until_arrived(mon, spec.uuid)
                await _quietly(mon, "nbd-server-stop")
                status = (await mon.execute("query-status"))["status"]
                if paused and status == "running":
                    await mon.execute("stop")
                elif not paused and status != "running":
                    await mon.execute("cont")  # paused by force-complete at the source
                await drv.guests.record_vnc(mon, paths)
            paths.spawning.unlink(missing_ok=True)
            self.ports.release(spec.uuid)

    def release(self, uuid: str) -> None:
        """What destroy frees besides the guest: its claimed ports."""
        self.ports.release(uuid)

    # --- source --------------------------------------------------------------------

    async def migrate(self, uuid: str, dest_host: str, block_migration: bool,
                      progress: Progress, target: MoveTarget) -> None:
        if not block_migration:
            raise SharedStorageRequired(uuid=uuid)
        drv = self.driver
        paths = drv._require(uuid)
        target = target.check()
        if not target.address or target.memory_port is None:
            raise VirtDriverError(reason=f"the destination {dest_host} of {uuid} gave no "
                                         "migration address")
        settings = MigrationSettings.from_conf(drv.conf)
        control = self.running[uuid] = MigrationControl()
        try:
            async with drv._lock(uuid):
                guest_config = paths.load()
                sizes = self._disk_sizes(guest_config, target, dest_host)
                LOG.info("Live migration of %s to %s (%s) starts: disks %s", uuid, dest_host,
                         target.address, target.disks)
                async with drv._session(paths) as mon:
                    outcome = await SourceMigration(mon, uuid, settings, control, progress).run(
                        target, guest_config.memory_mb << 20, sizes)
                await self._remove_moved(paths, dest_host)
        finally:
            self.running.pop(uuid, None)
        LOG.info("Live migration of %s done in %.3fs, downtime %d ms", uuid,
                 outcome.total_s, outcome.downtime_ms)

    async def _remove_moved(self, paths: InstancePaths, dest_host: str) -> None:
        """The guest runs on dest_host now: what is left here goes. A failure here is
        no failure of the move (raising would make the conductor roll the only
        running copy back): it is logged for the operator."""
        try:
            await self.driver._remove_guest(paths)
        except Exception as exc:
            LOG.error("%s now runs on %s, but its leftovers here (%s) could not be removed: "
                      "%s; remove them by hand", paths.uuid, dest_host, paths.dir, exc)

    def _disk_sizes(self, guest_config: GuestConfig, target: MoveTarget,
                    dest_host: str) -> list[int]:
        """Bytes of each disk to copy (their files here), each one the guest has."""
        sizes = []
        for drive in target.disks:
            disk = guest_config.disk(drive)
            if disk is None or disk.readonly:
                raise VirtDriverError(reason=(
                    f"{dest_host} asks for disk {drive!r} of {guest_config.uuid}, which has "
                    "no such writable disk"))
            sizes.append(Path(disk.path).stat().st_size)
        writable = {d.id for d in guest_config.disks if d.device == "disk" and not d.readonly}
        if missing := writable - set(target.disks):
            raise VirtDriverError(reason=f"{dest_host} takes no copy of disks "
                                         f"{sorted(missing)} of {guest_config.uuid}")
        return sizes

    async def cancel_orphans(self) -> None:
        """At start: live migrations out of here that a previous run of this service
        left to QEMU are cancelled (the guests run on here)."""
        for paths in self.driver._all_paths():
            if paths.spawning.exists() or self.driver.guests.pid(paths) is None:
                continue
            try:
                async with self.driver.guests.connect(paths.qmp) as mon:
                    await cancel_orphan(mon, paths.uuid)
            except VirtDriverError as exc:
                LOG.warning("Could not look for a live migration of %s: %s", paths.uuid, exc)

    def _control(self, uuid: str) -> MigrationControl:
        control = self.running.get(uuid)
        if control is None:
            raise NoLiveMigration(uuid=uuid)
        return control

    async def force_complete(self, uuid: str) -> None:
        self._control(uuid).ask_force()

    async def abort(self, uuid: str) -> None:
        self._control(uuid).ask_abort(uuid)


async def _export(mon: Monitor, address: str, port: int, disks: list[str]) -> None:
    """An NBD server on the incoming QEMU exporting each disk, writable, by its drive id."""
    await mon.execute("nbd-server-start", {"addr": {"type": "inet", "data": {
        "host": address, "port": str(port)}}})
    nodes = {b["device"]: b["inserted"]["node-name"]
             for b in await mon.execute("query-block") if b.get("inserted")}
    for drive in disks:
        await mon.execute("block-export-add", {
            "type": "nbd", "id": EXPORT_PREFIX + drive, "node-name": nodes[drive],
            "name": drive, "writable": True})


async def _until_arrived(mon: Monitor, uuid: str) -> None:
    deadline = time.monotonic() + INCOMING_TIMEOUT
    while (await mon.execute("query-status"))["status"] == "inmigrate":
        if time.monotonic() > deadline:
            raise VirtDriverError(reason=f"the state of {uuid} did not arrive within "
                                         f"{INCOMING_TIMEOUT:.0f}s")
        await asyncio.sleep(0.02)
    incoming = await mon.execute("query-migrate")
    if incoming.get("status") not in (None, "completed", "postcopy-active"):
        raise VirtDriverError(reason=f"taking {uuid} in ended {incoming.get('status')}: "
                                     f"{incoming.get('error-desc', 'no detail')}")


async def _quietly(mon: Monitor, command: str, arguments: dict[str, Any] | None = None) -> None:
    try:
        await mon.execute(command, arguments)
    except VirtDriverError as exc:
        LOG.info("%s: %s", command, exc)
