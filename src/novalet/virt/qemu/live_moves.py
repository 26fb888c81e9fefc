"""Live migration in the QEMU driver: both ends, as the conductor calls them.

Destination (pre_live_migration): the instance directory with the guest's disks
made anew (the root as an overlay over this host's copy of the same base image,
ephemeral and swap empty at their size, the config drive regenerated from the
spec), domain.json written, and a QEMU started with `-incoming defer` (without
-S: it runs the guest the moment the stream ends). On it, an NBD server exports
the writable disks (export name = drive id) and `migrate-incoming` listens; both
on ports claimed from [qemu] live_migration_port_range (another one when a
program took it meanwhile), answered as a MoveTarget. Until
post_live_migration_at_destination the directory is marked `spawning` (and
`live-incoming`): the guest isn't this host's yet (list_instances skips it,
destroy removes it and its QEMU). A compute service that starts anew finds out
whether it arrived: a guest that QEMU took in whole (or runs in post-copy) is
adopted as if finish had run, since the source has let its copy go (QEMU said
completed); one still waiting for its state is removed.

Source (live_migration): live_migration.SourceMigration over the guest's QMP
socket; once QEMU says completed (the destination has the whole state) its QEMU
quits and its directory goes. It mirrors a disk with `sync: top` only when the
destination made it an overlay over the image AND the disk here is an overlay
over this host's copy of the same image (after a cold move it is standalone:
its unallocated clusters read as zeros, which `top` would not copy). Abort and
force-complete don't wait for the guest's lock, which the job holds: they reach
the job through its MigrationControl; an abort that comes before the job starts
is kept for it (EARLY_ABORT_TTL).

Hosts here never share their instance directories, so a live migration without
block migration is refused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from novalet.compute.driver_types import GuestSpec, LiveMigrationAborted
from novalet.compute.move_payloads import MoveTarget
from novalet.virt.driver import VirtDriverError
from novalet.virt.qemu.guest import wait_incoming
from novalet.virt.qemu.layout import EPHEMERAL, SWAP, GuestConfig, InstancePaths
from novalet.virt.qemu.live_migration import (MigrationControl, MigrationSettings, Progress,
                                              SourceMigration, cancel_orphan, migration_uri,
                                              quietly)
from novalet.virt.qemu.migration_ports import bind_claimed, inbound_address
from novalet.virt.qemu.monitor import Monitor

if TYPE_CHECKING:
    from novalet.virt.qemu.driver import QemuDriver

LOG = logging.getLogger(__name__)

INCOMING_TIMEOUT = 60.0
"""Seconds post_live_migration_at_destination waits for the last state to land."""
EXPORT_PREFIX = "migrate-"
LIVE_INCOMING = "live-incoming"
"""Marks an instance directory made by pre_live_migration, until finish."""
EARLY_ABORT_TTL = 60.0
"""Seconds an abort that came before its job started is kept for that job."""


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
        self.early_aborts: dict[str, float] = {}  # uuid -> monotonic time of the abort

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
        (paths.dir / LIVE_INCOMING).touch()
        await self.driver.guests.start_incoming(paths, guest_config)
        nbd_port = None
        async with self.driver.guests.connect(paths.qmp) as mon:
            await self._set_incoming_capabilities(mon, spec.uuid)
            if disks:
                nbd_port = await bind_claimed(self.ports, spec.uuid, address,
                                              lambda port: _export(mon, address, port, disks))
            memory_port = await bind_claimed(self.ports, spec.uuid, address,
                                             lambda port: _take_in(mon, address, port))
        LOG.info("Waiting for %s on %s (memory port %d, disks %s on NBD port %s)",
                 spec.uuid, address, memory_port, disks, nbd_port)
        return MoveTarget(address=address, memory_port=memory_port, nbd_port=nbd_port,
                          disks=disks, overlays=overlays).check()

    async def _incoming_disks(self, spec: GuestSpec, paths: InstancePaths) -> GuestConfig:
        """The disks as spawn makes them, but ephemeral and swap made empty (their
        data, file system included, comes from the source), and kept so."""
        drv = self.driver
        for name, size in ((EPHEMERAL, spec.ephemeral_gb << 30), (SWAP, spec.swap_mb << 20)):
            if size:
                await drv.disks.create_blank(paths.disk(name), "qcow2", size)
        return await drv._create_disks(spec, paths, keep_ephemeral=True, keep_swap=True)

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
                await wait_incoming(mon, f"taking {spec.uuid} in", INCOMING_TIMEOUT,
                                    (None, "completed", "postcopy-active"))
                await quietly(mon, f"taking {spec.uuid} in", "nbd-server-stop")
                status = (await mon.execute("query-status"))["status"]
                if paused and status == "running":
                    await mon.execute("stop")
                elif not paused and status != "running":
                    await mon.execute("cont")  # paused by force-complete at the source
                await drv.guests.record_vnc(mon, paths)
            _mark_ours(paths)
            self.ports.release(spec.uuid)

    async def adopt_arrived(self, paths: InstancePaths) -> bool:
        """At start, for a directory still marked `spawning`: whether it holds a guest
        whose live migration to here went through (QEMU past `inmigrate`, its incoming
        migration completed or in post-copy) but whose finish never ran (it failed, or
        this service stopped). The source dropped its copy: this is the only one, so
        it becomes this host's (as finish would make it); the rest is removed."""
        if not (paths.dir / LIVE_INCOMING).exists() or self.driver.guests.pid(paths) is None:
            return False
        try:
            async with self.driver.guests.connect(paths.qmp) as mon:
                status = (await mon.execute("query-status"))["status"]
                incoming = (await mon.execute("query-migrate")).get("status")
                if status in ("inmigrate", "prelaunch") or not (
                        incoming in (None, "completed") or str(incoming).startswith("postcopy")):
                    return False
                await quietly(mon, f"adopting {paths.uuid}", "nbd-server-stop")
                await self.driver.guests.record_vnc(mon, paths)
        except VirtDriverError as exc:
            LOG.warning("Could not tell whether %s arrived here: %s", paths.uuid, exc)
            return False
        _mark_ours(paths)
        LOG.warning("Keeping %s: its live migration to here went through (QEMU %s, "
                    "incoming %s) but was never finished; it is this host's now",
                    paths.uuid, status, incoming)
        return True

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
        if self._aborted_early(uuid):
            raise LiveMigrationAborted(uuid=uuid)
        control = self.running[uuid] = MigrationControl()
        try:
            async with drv._lock(uuid):
                guest_config = paths.load()
                sizes = self._disk_sizes(guest_config, target, dest_host)
                target = await self._same_overlays(guest_config, target)
                LOG.info("Live migration of %s to %s (%s) starts: disks %s", uuid, dest_host,
                         target.address, target.disks)
                async with drv._session(paths) as mon:
                    job = SourceMigration(mon, uuid, settings, control, progress)
                    outcome = await job.migrate(target, guest_config.memory_mb << 20, sizes)
                removing = time.monotonic()
                # The last progress report goes out while the leftovers go (both before
                # this step answers: the conductor takes no report once it moved on).
                await asyncio.gather(self._remove_moved(paths, dest_host),
                                     job.reports.flush())
        finally:
            self.running.pop(uuid, None)
        LOG.info("Live migration of %s done in %.3fs, downtime %d ms (its leftovers here "
                 "removed in %.3fs)", uuid, outcome.total_s, outcome.downtime_ms,
                 time.monotonic() - removing)

    async def _same_overlays(self, guest_config: GuestConfig, target: MoveTarget
                             ) -> MoveTarget:
        """The target with only those of its overlays that are overlays here too, over
        this host's copy of the guest's image (`sync: top` then copies all that
        differs); any other disk is mirrored whole."""
        base = self.driver.cache.path / guest_config.image_id
        same = []
        for drive in target.overlays:
            disk = guest_config.disk(drive)
            info = (await self.driver.disks.info(Path(disk.path), disk.format, in_use=True)
                    if disk else None)
            if info is not None and info.backing_file and Path(info.backing_file) == base:
                same.append(drive)
            else:
                LOG.info("Disk %s of %s is no overlay over image %s here: copying it whole",
                         drive, guest_config.uuid, guest_config.image_id)
        return dataclasses.replace(target, overlays=same)

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
        """Abort the job of uuid; one that has not started yet (the conductor marks the
        migration running just before it asks for it) is aborted as it starts."""
        control = self.running.get(uuid)
        if control is None:
            LOG.info("Abort of the live migration of %s before it started: kept for it", uuid)
            self.early_aborts[uuid] = time.monotonic()
            return
        control.ask_abort(uuid)

    def _aborted_early(self, uuid: str) -> bool:
        asked = self.early_aborts.pop(uuid, None)
        return asked is not None and time.monotonic() - asked < EARLY_ABORT_TTL


async def _export(mon: Monitor, address: str, port: int, disks: list[str]) -> int:
    """An NBD server on the incoming QEMU exporting each disk, writable, by its drive
    id; its port."""
    await mon.execute("nbd-server-start", {"addr": {"type": "inet", "data": {
        "host": address, "port": str(port)}}})
    nodes = {b["device"]: b["inserted"]["node-name"]
             for b in await mon.execute("query-block") if b.get("inserted")}
    for drive in disks:
        await mon.execute("block-export-add", {
            "type": "nbd", "id": EXPORT_PREFIX + drive, "node-name": nodes[drive],
            "name": drive, "writable": True})
    return port


async def _take_in(mon: Monitor, address: str, port: int) -> int:
    """The incoming QEMU listening for the migration stream (QEMU lets a refused
    migrate-incoming be asked again); the port."""
    await mon.execute("migrate-incoming", {"uri": migration_uri(address, port)})
    return port


def _mark_ours(paths: InstancePaths) -> None:
    (paths.dir / LIVE_INCOMING).unlink(missing_ok=True)
    paths.spawning.unlink(missing_ok=True)
