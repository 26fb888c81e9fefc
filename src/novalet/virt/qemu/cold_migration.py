"""Cold migration and resize to another host: the disks travel over NBD.

The destination (prepare_move_in) makes the guest's writable disks as standalone
qcow2 files in `incoming/` of a new instance directory, marked `spawning` (no
guest yet: list_instances skips it, a restarted compute removes it), and serves
them with qemu-storage-daemon (disk_exports.py) on a port of [qemu]
live_migration_port_range. The source (move_out) checks each export is there
and large enough while the guest still runs, shuts the guest down and writes
each disk into its export with `qemu-img convert` (backing chain flattened,
zeros skipped), then keeps its instance directory aside as `<uuid>_resize`
(not a uuid: no driver lists it) until confirm drops it or revert brings it
back. A kept copy found while the guest's own directory is here is stale (an
older move's: confirmed while this host was down, or a confirm that failed):
move_out and destroy remove it, revert never brings it back over the guest. The
destination (finish) stops its NBD server and builds the guest from the disks
received, with the new flavor: memory and vCPUs, disks grown, swap and config
drive made anew.

What travels: the root and ephemeral disks. Swap holds nothing once the guest is
off, and the config drive is rebuilt from the spec, as a spawn builds it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from novalet.compute.move_payloads import MoveTarget, uri_host
from novalet.virt.driver import (GuestSpec, ImageMeta, InstanceNotFoundOnHost,
                                 VirtDriverError)
from novalet.virt.qemu.disk_exports import DiskExports
from novalet.virt.qemu.disks import QEMU_IMG, GiB
from novalet.virt.qemu.layout import EPHEMERAL, Disk, GuestConfig, InstancePaths
from novalet.virt.qemu.migration_ports import bind_claimed, inbound_address

if TYPE_CHECKING:
    from novalet.virt.qemu.driver import QemuDriver

LOG = logging.getLogger(__name__)

INCOMING = "incoming"
"""The subdirectory of an incoming guest's directory holding the disks it receives."""
KEPT_SUFFIX = "_resize"
TRAVELLING = ("root", "eph0")
"""Drive ids of the disks a cold move copies."""
PROBE_TIMEOUT = 30.0
COPY_TIMEOUT = 3600.0


class DiskCopyFailed(VirtDriverError):
    msg_fmt = ("Cannot move the %(drive)s disk of %(uuid)s to %(host)s (%(uri)s): "
               "%(reason)s")


def kept_dir(instances_path: Path, uuid: str) -> Path:
    """Where a source keeps a guest that moved away, until confirm or revert."""
    return instances_path / f"{uuid}{KEPT_SUFFIX}"


def kept_configs(instances_path: Path) -> list[Path]:
    """The domain.json of every guest kept for a revert (their base images are in use)."""
    if not instances_path.is_dir():
        return []
    return sorted(instances_path.glob(f"*{KEPT_SUFFIX}/domain.json"))


def nbd_uri(target: MoveTarget, drive: str) -> str:
    """The NBD address of one export, built from the checked parts of a MoveTarget."""
    return f"nbd://{uri_host(target.address)}:{target.nbd_port}/{drive}"


def copy_argv(disk: Path, disk_format: str, uri: str) -> list[str]:
    """qemu-img writing a disk (its backing chain flattened) into a fresh, zeroed export:
    only the blocks holding data cross the wire."""
    return [QEMU_IMG, "convert", "-q", "-n", "--target-is-zero", "-W", "-f", disk_format,
            "-O", "raw", str(disk), uri]


def incoming_sizes(spec: GuestSpec, image_size: int) -> list[tuple[str, int]]:
    """(drive id, bytes) of the disks a destination makes for spec: at least what the
    source's can be (a root disk is the image's size when the flavor says 0), and
    the new flavor's size (a resize grows them here)."""
    sizes = [("root", max(spec.root_gb * GiB, image_size) or GiB)]
    if spec.ephemeral_gb:
        sizes.append(("eph0", spec.ephemeral_gb * GiB))
    return sizes


class ColdMigrations:
    """Both ends of a cold move for one QemuDriver (which holds the per-guest lock)."""

    def __init__(self, driver: QemuDriver) -> None:
        self.driver = driver
        self.ports = driver.migration_ports
        self.exports = DiskExports(driver.runner, driver.processes)

    # --- destination -------------------------------------------------------------

    async def prepare(self, paths: InstancePaths, spec: GuestSpec) -> MoveTarget:
        async with self.driver.new_guest_dir(paths, "Preparing to take"):
            return await self._serve(paths, spec)

    async def _serve(self, paths: InstancePaths, spec: GuestSpec) -> MoveTarget:
        base = await self.driver.cache.get(spec.image or ImageMeta(id=spec.image_ref))
        incoming = paths.dir / INCOMING
        incoming.mkdir()
        disks = []
        for drive, size in incoming_sizes(spec, 0 if base.is_iso else base.virtual_size):
            await self.driver.disks.create_blank(incoming / drive, "qcow2", size)
            disks.append((drive, incoming / drive))
        address = inbound_address(self.driver.conf)

        async def serve(port: int) -> int:
            await self.exports.start(paths, disks, address, port)
            return port

        port = await bind_claimed(self.ports, spec.uuid, address, serve)
        LOG.info("Taking the disks of %s on %s:%d", spec.uuid, address, port)
        return MoveTarget(address=address, nbd_port=port, disks=[d for d, _ in disks])

    async def close(self, paths: InstancePaths) -> None:
        """Stop what prepare opened (its NBD server, its port); nothing is fine."""
        await self.exports.stop(paths)
        self.ports.release(paths.uuid)

    async def finish(self, paths: InstancePaths, spec: GuestSpec, power_on: bool) -> None:
        incoming = paths.dir / INCOMING
        if not incoming.is_dir():
            raise VirtDriverError(reason=f"no disks of {spec.uuid} were received here; "
                                         "the move's prepare step never ran on this host")
        await self.close(paths)
        if not await self._has_data(incoming / "root"):
            raise VirtDriverError(reason=f"the root disk of {spec.uuid} never arrived")
        received_eph = incoming / "eph0"
        if received_eph.exists() and await self._has_data(received_eph):
            os.replace(received_eph, paths.disk(EPHEMERAL))  # kept by _create_disks
        guest_config = await self.driver._create_disks(spec, paths, keep_ephemeral=True)
        root = guest_config.disk("root")
        assert root is not None
        os.replace(incoming / "root", root.path)
        await self._grow(guest_config, spec)
        await asyncio.to_thread(shutil.rmtree, incoming)
        if power_on:
            await self.driver._start(paths, guest_config)
        paths.spawning.unlink()

    async def _has_data(self, disk: Path) -> bool:
        """Whether anything was written to a qcow2 made blank by prepare."""
        result = await self.driver.runner.run(
            [QEMU_IMG, "map", "--output=json", "-f", "qcow2", str(disk)], timeout=PROBE_TIMEOUT)
        return any(extent.get("data") for extent in json.loads(result.stdout))

    async def _grow(self, guest_config: GuestConfig, spec: GuestSpec) -> None:
        wanted = {"root": spec.root_gb * GiB, "eph0": spec.ephemeral_gb * GiB}
        for disk in guest_config.disks:
            if disk.id in wanted:
                size = (await self.driver.disks.info(Path(disk.path), disk.format)).virtual_size
                if wanted[disk.id] > size:
                    await self.driver.disks.resize(Path(disk.path), disk.format, wanted[disk.id])

    # --- source ------------------------------------------------------------------

    async def move_out(self, paths: InstancePaths, dest_host: str, target: MoveTarget) -> None:
        await self.drop_stale_kept(paths)  # first: whatever fails below, this guest stays
        if paths.rescue_config.exists():
            raise VirtDriverError(reason=f"instance {paths.uuid} is rescued; unrescue it first")
        if self.driver.guests.pid(paths) is None and paths.state.exists():
            raise VirtDriverError(reason=f"instance {paths.uuid} is suspended; resume it first")
        disks = [d for d in paths.load().disks if d.id in TRAVELLING]
        await self._check_target(paths, dest_host, target, disks)
        was_running = self.driver.guests.pid(paths) is not None
        await self.driver.guests.stop(paths, self.driver.conf.get("DEFAULT", "shutdown_timeout"))
        try:
            for disk in disks:
                await self._copy(paths.uuid, dest_host, Path(disk.path), disk.format,
                                 nbd_uri(target, disk.id), disk.id)
        except Exception as exc:
            if was_running:  # the guest runs here again; a revert finds it running
                LOG.warning("Moving %s failed (%s); starting it again here", paths.uuid, exc)
                try:
                    await self.driver._start(paths, paths.load())
                except VirtDriverError as restart:
                    LOG.error("Could not restart %s here: %s", paths.uuid, restart)
            raise
        os.rename(paths.dir, kept_dir(self.driver.instances_path, paths.uuid))

    async def drop_stale_kept(self, paths: InstancePaths) -> None:
        """Remove the kept copy of a guest whose own directory is on this host. Such a
        copy serves no revert: a move keeps its guest by renaming the directory away,
        and nothing brings one back here before that move's confirm or revert (the
        server is VERIFY_RESIZE, which no other move or rebuild accepts). It is left
        by a move confirmed while this host was down, or by a confirm that failed."""
        kept = kept_dir(self.driver.instances_path, paths.uuid)
        if paths.dir.is_dir() and kept.exists():
            LOG.warning("Removing %s, a copy of %s left by an earlier move", kept, paths.uuid)
            await asyncio.to_thread(shutil.rmtree, kept, True)
            if kept.exists():
                raise VirtDriverError(reason=f"could not remove {kept}, left by an earlier "
                                             f"move of {paths.uuid}; remove it by hand")

    async def _check_target(self, paths: InstancePaths, dest_host: str, target: MoveTarget,
                            disks: list[Disk]) -> None:
        """While the guest still runs: every disk has an export at dest_host, reachable
        and no smaller than the disk (shrinking a disk is refused, as Nova does)."""
        for disk in disks:
            uri = nbd_uri(target, disk.id)
            if disk.id not in target.disks:
                raise DiskCopyFailed(drive=disk.id, uuid=paths.uuid, host=dest_host, uri=uri,
                                     reason="the destination takes no such disk (the new "
                                            "flavor has none; disks can't shrink)")
            local = (await self.driver.disks.info(Path(disk.path), disk.format,
                                                  in_use=True)).virtual_size
            remote = await self._export_size(paths.uuid, dest_host, uri, disk.id)
            if remote < local:
                raise DiskCopyFailed(drive=disk.id, uuid=paths.uuid, host=dest_host, uri=uri,
                                     reason=f"it would shrink from {local} to {remote} bytes")

    async def _export_size(self, uuid: str, dest_host: str, uri: str, drive: str) -> int:
        try:
            result = await self.driver.runner.run(
                [QEMU_IMG, "info", "--output=json", "-f", "raw", uri], timeout=PROBE_TIMEOUT)
            return int(json.loads(result.stdout)["virtual-size"])
        except (VirtDriverError, ValueError, KeyError) as exc:
            raise DiskCopyFailed(drive=drive, uuid=uuid, host=dest_host, uri=uri,
                                 reason=f"its NBD server does not answer ({exc}); the guest "
                                        "keeps running here") from exc

    async def _copy(self, uuid: str, dest_host: str, disk: Path, disk_format: str, uri: str,
                    drive: str) -> None:
        try:
            result = await self.driver.runner.run(copy_argv(disk, disk_format, uri),
                                                  timeout=COPY_TIMEOUT)
        except VirtDriverError as exc:
            raise DiskCopyFailed(drive=drive, uuid=uuid, host=dest_host, uri=uri,
                                 reason=str(exc)) from exc
        LOG.info("Copied the %s disk of %s to %s in %.2fs", drive, uuid, uri, result.seconds)

    async def confirm(self, paths: InstancePaths) -> None:
        """Drop the kept guest; none kept is fine."""
        await asyncio.to_thread(shutil.rmtree,
                                kept_dir(self.driver.instances_path, paths.uuid), True)

    async def revert(self, paths: InstancePaths, power_on: bool) -> None:
        """The kept guest back in its place, started when `power_on` and not running
        already. A guest directory here is never replaced: a move that kept its guest
        renamed that directory away, so one still here means the move failed before
        (the guest stayed, maybe running) and any kept copy is an older move's."""
        kept = kept_dir(self.driver.instances_path, paths.uuid)
        if kept.is_dir() and paths.dir.exists():
            LOG.warning("Not bringing back %s: the guest %s is here; that copy is left by "
                        "an earlier move (its next move or delete removes it)", kept,
                        paths.uuid)
        elif kept.is_dir():
            os.rename(kept, paths.dir)
        if not paths.config.exists():
            raise InstanceNotFoundOnHost(uuid=paths.uuid)
        if power_on and self.driver.guests.pid(paths) is None:
            await self.driver._start(paths, paths.load())
