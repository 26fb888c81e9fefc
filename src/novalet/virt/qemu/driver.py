"""The QEMU driver: one detached qemu-system-x86_64 per guest, controlled over QMP.

The driver keeps no state in memory that matters: every guest is its instance
directory (layout.py), so a compute service constructed anew finds running
guests by their pid files and QMP sockets and controls them without
restarting them. Operations on one guest are serialized; different guests
proceed concurrently.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from novalet import config
from novalet.network.model import Vif
from novalet.compute.states import PowerState
from novalet.console.types import ConsoleTarget
from novalet.virt.driver import (ComputeDriver, ConsoleUnavailable, Diagnostics,
                                 DriverCapabilities,
                                 GuestInfo, GuestSpec,
                                 HostResources, ImageFetcher, ImageMeta,
                                 InstanceNotFoundOnHost, MigrationProgress, MoveTarget,
                                 VirtDriverError)
from novalet.virt.qemu import (accel, cmdline, cold_migration, configdrive, consoles,
                               diagnostics, guest_dirs, host_facts, image_properties,
                               monitor)
from novalet.virt.qemu.commands import PACKAGE_HINTS, CommandRunner
from novalet.virt.qemu.disks import GiB, Disks
from novalet.virt.qemu.guest import Guests, GuestNotRunning, power_state_of
from novalet.virt.qemu.imagecache import CachedImage, ImageCache
from novalet.virt.qemu.interfaces import Interfaces
from novalet.virt.qemu.live_moves import LiveMoves
from novalet.virt.qemu.migration_ports import MigrationPorts
from novalet.virt.qemu.layout import (CONFIG, EPHEMERAL, RESCUE, RESCUE_CONFIG, ROOT,
                                      SWAP, Disk, GuestConfig,
                                      InstancePaths, mac_for, write_atomic)
from novalet.virt.qemu.monitor import MonitorConnector
from novalet.virt.qemu.process import QemuProcesses

LOG = logging.getLogger(__name__)

CONSOLE_OUTPUT_MAX = 1024 * 1024
"""Bytes of the serial log get_console_output returns at most (the newest)."""

_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                   r"[0-9a-fA-F]{12}$")

class QemuDriver(ComputeDriver):
    capabilities = DriverCapabilities(
        supports_reboot=True, supports_pause=True, supports_suspend=True,
        supports_snapshot=True, supports_rescue=True, supports_rebuild=True,
        supports_resize=True, supports_attach_interface=True, supports_vnc_console=True,
        supports_spice_console=True, supports_serial_console=True,
        # No QEMU guest agent channel is given to guests, so nothing in the guest can
        # set a password (changePassword is refused up front with 409, as Nova does
        # without hw_qemu_guest_agent); an NMI needs only QMP.
        supports_set_admin_password=False, supports_trigger_crash_dump=True,
        # Moves to another host: cold (cold_migration.py) and live, which is block
        # migration only (live_moves.py): instance directories are never shared.
        supports_migrate=True, supports_live_migrate=True)

    def __init__(self, conf: config.Config, fetcher: ImageFetcher | None = None, *,
                 runner: CommandRunner | None = None, processes: QemuProcesses | None = None,
                 connect: MonitorConnector | None = None) -> None:
        self.conf = conf
        self.host: str = conf.get("DEFAULT", "host")
        self.instances_path = Path(conf.get("qemu", "instances_path")
                                   or conf.state_path / "instances").resolve()
        self.runner = runner or CommandRunner()
        self.disks = Disks(self.runner)
        self.cache = ImageCache(Path(conf.get("qemu", "image_cache_path")
                                     or self.instances_path / "_base").resolve(),
                                self.disks, fetcher)
        self.processes = processes or QemuProcesses(self.runner)
        host_settings = self._host_settings(None)
        first, last = ((10000, 20000) if not (host_settings.spice_listen
                                              or host_settings.serial_listen)
                       else consoles.parse_range(conf.get("serial_console", "port_range")))
        self.guests = Guests(self.processes, connect or monitor.connect, host_settings,
                             conf.get("qemu", "console_log_max_bytes"),
                             consoles.PortAllocator(first, last))
        self.interfaces = Interfaces(self.guests, conf)
        self.accel: str | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._adopted: set[str] = set()  # live-migrated here, kept by init_host
        self._qemu_version: int | None = None  # os-hypervisors' hypervisor_version
        self.counters = diagnostics.HostCounters()  # /proc and /sys, for diagnostics
        self.migration_ports = MigrationPorts(conf)  # one range for both kinds of move
        self.cold_moves = cold_migration.ColdMigrations(self)
        self.live = LiveMoves(self)

    def _host_settings(self, accelerator: str | None) -> cmdline.HostSettings:
        network = self.conf.get("qemu", "network")
        if network not in ("user", "none"):
            raise VirtDriverError(reason=f"[qemu] network must be user or none, not {network!r}")
        return cmdline.HostSettings(accel=accelerator or accel.TCG,
                                    tcg_tb_size=self.conf.get("qemu", "tcg_tb_size"),
                                    vnc_listen=self._listen("vnc", "server_listen"),
                                    network=network,
                                    spice_listen=self._listen("spice", "server_listen"),
                                    serial_listen=self._listen("serial_console",
                                                               "proxyclient_address"))

    def _listen(self, section: str, option: str) -> str | None:
        """Where guests' displays of this kind listen; None when the kind is turned off."""
        return str(self.conf.get(section, option)) if self.conf.get(section, "enabled") else None

    # --- host ----------------------------------------------------------------

    async def init_host(self, host: str) -> None:
        self.host = host
        if shutil.which(cmdline.QEMU) is None:
            raise VirtDriverError(reason=f"{cmdline.QEMU} is not installed "
                                         f"({PACKAGE_HINTS[cmdline.QEMU]})")
        self.instances_path.mkdir(parents=True, exist_ok=True)
        await self._ensure_accel()
        await self._remove_unfinished_spawns()
        await self.live.cancel_orphans()

    async def _ensure_accel(self) -> str:
        if self.accel is None:
            self.accel = await accel.detect(self.conf.get("qemu", "virt_type"), self.runner,
                                            cmdline.QEMU)
            self.guests.host = self._host_settings(self.accel)
        return self.accel

    async def _remove_unfinished_spawns(self) -> None:
        """Instance dirs a crashed compute service left mid-spawn hold no usable guest
        (but a guest that arrived by live migration is kept: live_moves.py)."""
        for paths in self._all_paths():
            if not paths.spawning.exists():
                continue
            if await self.live.adopt_arrived(paths):
                self._adopted.add(paths.uuid)
            else:
                LOG.warning("Removing %s: its spawn never finished", paths.uuid)
                await self._remove_guest(paths)

    def adopted_at_start(self) -> set[str]:
        return set(self._adopted)

    async def get_available_resource(self) -> HostResources:
        self.instances_path.mkdir(parents=True, exist_ok=True)
        disk = shutil.disk_usage(self.instances_path)
        return HostResources(hypervisor_hostname=self.host, hypervisor_type="QEMU",
                             vcpus=os.cpu_count() or 1, memory_mb=host_facts.memory_mb(),
                             local_gb=disk.total // GiB, cpu_info=host_facts.cpu_info(),
                             hypervisor_version=await self._version())

    async def _version(self) -> int:
        """QEMU's version as Nova encodes it (7.2.22 -> 7002022), asked once; 0 when
        `qemu-system-x86_64 --version` doesn't tell."""
        if self._qemu_version is None:
            try:
                result = await self.runner.run([cmdline.QEMU, "--version"], timeout=10)
                self._qemu_version = host_facts.parse_qemu_version(result.stdout)
            except VirtDriverError as exc:  # CommandFailed, CommandTimedOut
                LOG.warning("Cannot tell the QEMU version: %s", exc)
                self._qemu_version = 0
        return self._qemu_version

    async def list_instances(self) -> list[str]:
        return [p.uuid for p in self._all_paths()
                if p.config.exists() and not p.spawning.exists()]

    def _all_paths(self) -> list[InstancePaths]:
        if not self.instances_path.is_dir():
            return []
        return [InstancePaths(self.instances_path, entry.name)
                for entry in sorted(self.instances_path.iterdir())
                if entry.is_dir() and _UUID.match(entry.name)]

    # --- create and delete -----------------------------------------------------

    async def spawn(self, spec: GuestSpec) -> None:
        paths = self._paths(spec.uuid)
        async with self._lock(spec.uuid):
            await self._ensure_accel()
            async with self.new_guest_dir(paths, "Spawning"):
                try:
                    await self.guests.start(paths, await self._create_disks(spec, paths))
                except Exception as exc:
                    if isinstance(exc, VirtDriverError):
                        raise
                    raise VirtDriverError(reason=f"spawning {spec.uuid} failed: {exc}") from exc
            paths.spawning.unlink()

    def new_guest_dir(self, paths: InstancePaths, doing: str
                      ) -> AbstractAsyncContextManager[None]:
        """The guest's directory made new, removed again if the block fails (guest_dirs.py)."""
        return guest_dirs.new_guest_dir(paths, self._remove_guest, doing)

    async def destroy(self, uuid: str) -> None:
        paths = self._paths(uuid)
        async with self._lock(uuid):
            await self.cold_moves.drop_stale_kept(paths)  # only with the guest here
            await self._remove_guest(paths)
            self.live.release(uuid)  # an incoming guest's ports

    async def _remove_guest(self, paths: InstancePaths) -> None:
        if not paths.dir.exists():
            return
        await self.cold_moves.close(paths)  # an incoming guest's NBD server
        await self.guests.force_stop(paths)
        await asyncio.to_thread(shutil.rmtree, paths.dir, True)
        if paths.dir.exists():
            raise VirtDriverError(reason=f"could not remove {paths.dir}")

    async def _create_disks(self, spec: GuestSpec, paths: InstancePaths,
                            keep_ephemeral: bool = False, keep_swap: bool = False
                            ) -> GuestConfig:
        """Make the guest's disks and config drive, write domain.json; its GuestConfig."""
        image = spec.image or ImageMeta(id=spec.image_ref)
        props = dict(image.properties)
        image_properties.log_ignored(spec.uuid, props)
        machine = str(props.get("hw_machine_type") or self.conf.get("qemu", "machine_type"))
        disk_bus = image_properties.choice(props, "hw_disk_bus", "virtio", cmdline.DISK_BUSES)
        cdrom_bus = image_properties.choice(props, "hw_cdrom_bus", "sata" if "q35" in machine else "ide",
                            ("ide", "sata", "scsi"))
        vif = image_properties.choice(props, "hw_vif_model", "virtio", tuple(cmdline.VIF_MODELS))
        video = cmdline.VIDEO_MODELS[image_properties.choice(props, "hw_video_model", "vga",
                                             tuple(cmdline.VIDEO_MODELS))]

        base = await self.cache.get(image)
        bases = [str(base.path)]
        disks = [await self._make_root(spec, image, base, paths, disk_bus)]
        if base.is_iso:
            disks.append(Disk("image", str(base.path), base.format, cdrom_bus, "cdrom",
                              boot_index=0, readonly=True))
        if spec.ephemeral_gb:
            eph = await self._blank_disk(paths.disk(EPHEMERAL), spec.ephemeral_gb * 1024, "ext4",
                                         "ephemeral0", keep=keep_ephemeral)
            bases.append(str(eph.path))
            disks.append(Disk("eph0", str(paths.disk(EPHEMERAL)), "qcow2", disk_bus))
        if spec.swap_mb:
            swap = await self._blank_disk(paths.disk(SWAP), spec.swap_mb, "swap", "swap",
                                          keep=keep_swap)
            bases.append(str(swap.path))
            disks.append(Disk("swap", str(paths.disk(SWAP)), "qcow2", disk_bus))
        if spec.config_drive or self.conf.get("DEFAULT", "force_config_drive"):
            await asyncio.to_thread(configdrive.build, spec, paths.disk(CONFIG))
            disks.append(Disk("config", str(paths.disk(CONFIG)), "raw", cdrom_bus, "cdrom",
                              readonly=True))
        kernel, initrd, kernel_bases = await self._kernel(props, disk_bus)
        guest_config = GuestConfig(
            uuid=spec.uuid, name=spec.name, memory_mb=spec.memory_mb, vcpus=spec.vcpus,
            machine_type=machine, disks=tuple(disks), mac=mac_for(spec.uuid), vif_model=vif,
            taps=tuple((vif.tap, vif.address)
                       for vif in (Vif.from_dict(v) for v in spec.network_info)),
            rng=props.get("hw_rng_model") == "virtio", video=video,
            usb_tablet=props.get("hw_pointer_model") == "usbtablet",
            kernel=kernel, initrd=initrd,
            kernel_cmdline=(str(props.get("os_command_line") or image_properties.default_cmdline(disk_bus))
                            if kernel else None),
            bases=tuple(bases + kernel_bases), image_id=image.id,
            flavor={"root_gb": spec.root_gb, "ephemeral_gb": spec.ephemeral_gb,
                    "swap_mb": spec.swap_mb})
        write_atomic(paths.config, guest_config.to_json())
        return guest_config

    async def _make_root(self, spec: GuestSpec, image: ImageMeta, base: CachedImage,
                         paths: InstancePaths, bus: str, name: str = ROOT,
                         disk_id: str = "root") -> Disk:
        path = paths.disk(name)
        wanted = spec.root_gb * GiB
        if base.is_iso:
            # An ISO boots as a cdrom; the root disk starts blank.
            await self.disks.create_blank(path, "qcow2", wanted or GiB)
            return Disk(disk_id, str(path), "qcow2", bus, boot_index=1)
        if wanted and wanted < base.virtual_size:
            raise VirtDriverError(reason=(
                f"the flavor's root disk ({spec.root_gb} GiB) is smaller than image "
                f"{image.id} ({base.virtual_size} bytes virtual)"))
        if wanted and image.min_disk and spec.root_gb < image.min_disk:
            raise VirtDriverError(reason=(
                f"the flavor's root disk ({spec.root_gb} GiB) is smaller than image "
                f"{image.id}'s min_disk ({image.min_disk} GiB)"))
        await self.disks.create_overlay(path, base.path, base.format,
                                        wanted if wanted > base.virtual_size else None)
        return Disk(disk_id, str(path), "qcow2", bus, boot_index=0)

    async def _blank_disk(self, path: Path, size_mb: int, fs: str, label: str,
                          keep: bool = False) -> CachedImage:
        base = await self.cache.blank_filesystem(size_mb, fs, label)
        if not (keep and path.exists()):
            path.unlink(missing_ok=True)
            await self.disks.create_overlay(path, base.path, base.format)
        return base

    async def _kernel(self, props: dict[str, Any], disk_bus: str
                      ) -> tuple[str | None, str | None, list[str]]:
        """Direct kernel boot: the cached kernel and ramdisk the image names, if any."""
        if not props.get("kernel_id"):
            return None, None, []
        kernel = await self.cache.get_file(ImageMeta(id=str(props["kernel_id"]),
                                                     disk_format="aki"))
        bases = [str(kernel.path)]
        initrd = None
        if props.get("ramdisk_id"):
            ramdisk = await self.cache.get_file(ImageMeta(id=str(props["ramdisk_id"]),
                                                          disk_format="ari"))
            initrd = str(ramdisk.path)
            bases.append(initrd)
        return str(kernel.path), initrd, bases

    # --- power -----------------------------------------------------------------

    async def reboot(self, uuid: str, hard: bool) -> None:
        paths = self._require(uuid)
        async with self._lock(uuid):
            guest_config = paths.load_active()
            if not hard and await self.guests.status(paths) == "running":
                # Nova's soft reboot: the guest shuts down (ACPI) and starts again;
                # one that doesn't within reboot_timeout is stopped by force.
                await self.guests.stop(paths, self.conf.get("qemu", "reboot_timeout"))
            else:
                await self.guests.force_stop(paths)
            self._discard_saved_state(paths)
            await self._start(paths, guest_config)

    async def power_off(self, uuid: str, timeout: float = 0) -> None:
        paths = self._require(uuid)
        async with self._lock(uuid):
            await self.guests.stop(paths, timeout)

    async def power_on(self, uuid: str) -> None:
        paths = self._require(uuid)
        async with self._lock(uuid):
            if self.guests.pid(paths) is not None:
                return
            self._discard_saved_state(paths)
            await self._start(paths, paths.load_active())

    async def pause(self, uuid: str) -> None:
        paths = self._require(uuid)
        async with self._lock(uuid):
            await self.guests.execute(paths, "stop")

    async def unpause(self, uuid: str) -> None:
        paths = self._require(uuid)
        async with self._lock(uuid):
            await self.guests.execute(paths, "cont")

    async def trigger_crash_dump(self, uuid: str) -> None:
        """QMP inject-nmi (GuestNotRunning, a 409, when qemu is not running)."""
        paths = self._require(uuid)
        async with self._lock(uuid):
            await self.guests.execute(paths, "inject-nmi")

    async def suspend(self, uuid: str) -> None:
        paths = self._require(uuid)
        async with self._lock(uuid):
            if self.guests.pid(paths) is None and paths.state.exists():
                return
            accelerator = await self._ensure_accel()
            was_running = await self.guests.save_state(paths)
            write_atomic(paths.state_meta, json.dumps({"accel": accelerator,
                                                       "was_running": was_running}))

    async def resume(self, uuid: str) -> None:
        paths = self._require(uuid)
        async with self._lock(uuid):
            if self.guests.pid(paths) is not None:
                return
            if not paths.state.exists():
                raise VirtDriverError(reason=f"instance {uuid} has no saved state to resume")
            try:
                meta = json.loads(paths.state_meta.read_text())
            except (OSError, ValueError):
                meta = {}
            await self._ensure_accel()
            await self.guests.start(paths, paths.load_active(), state=paths.state,
                                    run=meta.get("was_running", True), accel=meta.get("accel"))
            paths.state.unlink()
            paths.state_meta.unlink(missing_ok=True)

    async def _start(self, paths: InstancePaths, guest_config: GuestConfig) -> None:
        await self._ensure_accel()
        await self.guests.start(paths, guest_config)

    def _discard_saved_state(self, paths: InstancePaths) -> None:
        if paths.state.exists():
            LOG.info("Discarding the saved state of %s", paths.uuid)
        paths.state.unlink(missing_ok=True)
        paths.state_meta.unlink(missing_ok=True)

    # --- queries ---------------------------------------------------------------

    async def get_info(self, uuid: str) -> GuestInfo:
        """The guest's power state: from QMP while its QEMU runs, else from its files.

        A QEMU that runs but doesn't answer QMP raises VirtDriverError: that is
        "unknown", not "off".
        """
        paths = self._require(uuid)
        if self.guests.pid(paths) is None:
            state = PowerState.SUSPENDED if paths.state.exists() else PowerState.SHUTDOWN
            return GuestInfo(power_state=state)
        status = await self.guests.status(paths)
        if status is None:  # it ended just now
            return GuestInfo(power_state=PowerState.SHUTDOWN)
        return GuestInfo(power_state=power_state_of(status))

    async def get_console_output(self, uuid: str) -> str:
        paths = self._require(uuid)
        try:
            with paths.console_log.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - CONSOLE_OUTPUT_MAX))
                data = handle.read()
        except FileNotFoundError:
            return ""
        return data.decode("utf-8", errors="replace")

    async def get_console(self, uuid: str, kind: str) -> ConsoleTarget:
        """Where the running guest's VNC or SPICE display or serial port listens, as QEMU
        itself reports it, at the address the proxies reach this host by.

        ConsoleUnavailable when the kind is turned off here (or the guest was started
        while it was); GuestNotRunning (409) when the guest's QEMU doesn't run.
        """
        section = consoles.PROXY_ADDRESS.get(kind)
        if section is None or not self.conf.get(section[0], "enabled"):
            raise ConsoleUnavailable(console_type=kind)
        paths = self._require(uuid)
        if kind == "vnc":
            vnc = await self.guests.execute(paths, "query-vnc")
            port = vnc.get("service") if vnc.get("enabled") else None
        elif kind == "spice":
            spice = await self.guests.execute(paths, "query-spice")
            port = spice.get("port") if spice.get("enabled") else None
        else:
            port = consoles.serial_port(await self.guests.execute(paths, "query-chardev"))
        if not port:
            raise ConsoleUnavailable(console_type=kind)
        return ConsoleTarget(host=str(self.conf.get(*section)), port=int(port))

    async def get_diagnostics(self, uuid: str) -> Diagnostics:
        """What QMP and the host's counters say of the running guest
        (virt/qemu/diagnostics.py); GuestNotRunning (409) when its QEMU doesn't run."""
        paths = self._require(uuid)
        hypervisor = "kvm" if self.accel == accel.KVM else "qemu"
        return await diagnostics.collect(self.guests, paths, paths.load(), hypervisor,
                                         self.counters)

    # --- snapshot ----------------------------------------------------------------

    async def snapshot(self, uuid: str, dest: str) -> str:
        """A standalone qcow2 of the root disk at dest: a point-in-time copy, taken live
        (QMP drive-backup) when the guest runs."""
        paths = self._require(uuid)
        target = Path(dest).resolve()
        async with self._lock(uuid):
            root = paths.load().disk("root")
            assert root is not None
            if self.guests.pid(paths) is None:
                await self.disks.convert(Path(root.path), root.format, target, "qcow2")
            else:
                await self._live_backup(paths, target)
        return "qcow2"

    async def _live_backup(self, paths: InstancePaths, target: Path) -> None:
        job = "snapshot"
        async with self._session(paths) as mon:
            await mon.execute("drive-backup", {
                "job-id": job, "device": "root", "target": str(target), "format": "qcow2",
                "sync": "full", "mode": "absolute-paths", "auto-dismiss": False})
            delay = 0.01
            while True:
                jobs = {j["id"]: j for j in await mon.execute("query-jobs")}
                info = jobs.get(job)
                if info is None or info["status"] == "concluded":
                    break
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
            if info is not None:
                await mon.execute("job-dismiss", {"id": job})
            if info is None or info.get("error"):
                target.unlink(missing_ok=True)
                raise VirtDriverError(reason=f"snapshot of {paths.uuid} failed: "
                                             f"{(info or {}).get('error', 'job vanished')}")

    @asynccontextmanager
    async def _session(self, paths: InstancePaths) -> AsyncIterator[monitor.Monitor]:
        if self.guests.pid(paths) is None:
            raise GuestNotRunning(uuid=paths.uuid)
        async with self.guests.connect(paths.qmp) as mon:
            yield mon

    # --- rescue ------------------------------------------------------------------

    async def rescue(self, uuid: str, rescue: GuestSpec) -> None:
        """Boot rescue's image as the first disk, the guest's own root disk second.

        The guest is stopped at once (quit): a caller wanting a clean shutdown
        calls power_off with a timeout first.
        """
        paths = self._require(uuid)
        async with self._lock(uuid):
            if paths.rescue_config.exists():
                raise VirtDriverError(reason=f"instance {uuid} is already rescued")
            own = paths.load()
            await self.guests.force_stop(paths)
            self._discard_saved_state(paths)
            try:
                rescue_config = await self._rescue_config(own, rescue, paths)
                write_atomic(paths.rescue_config, rescue_config.to_json())
                await self._start(paths, rescue_config)
            except BaseException:
                self._remove_rescue_files(paths)
                raise

    async def _rescue_config(self, own: GuestConfig, rescue: GuestSpec,
                             paths: InstancePaths) -> GuestConfig:
        image = rescue.image or ImageMeta(id=rescue.image_ref)
        props = dict(image.properties)
        base = await self.cache.get(image)
        if base.is_iso:
            raise VirtDriverError(reason=f"rescue image {image.id} is an ISO; use a disk image")
        root = own.disk("root")
        assert root is not None
        bus = image_properties.choice(props, "hw_disk_bus", root.bus, cmdline.DISK_BUSES)
        rescue_disk = paths.disk(RESCUE)
        await self.disks.create_overlay(rescue_disk, base.path, base.format)
        disks = [Disk("rescue", str(rescue_disk), "qcow2", bus, boot_index=0),
                 dataclasses.replace(root, boot_index=None)]
        config_disk = own.disk("config")
        if config_disk is not None:
            await asyncio.to_thread(configdrive.build, rescue, paths.disk(RESCUE_CONFIG))
            disks.append(dataclasses.replace(config_disk, path=str(paths.disk(RESCUE_CONFIG))))
        kernel, initrd, kernel_bases = await self._kernel(props, bus)
        return dataclasses.replace(
            own, disks=tuple(disks), kernel=kernel, initrd=initrd,
            kernel_cmdline=(str(props.get("os_command_line") or image_properties.default_cmdline(bus))
                            if kernel else None),
            bases=(*own.bases, str(base.path), *kernel_bases))

    def _remove_rescue_files(self, paths: InstancePaths) -> None:
        for path in (paths.rescue_config, paths.disk(RESCUE), paths.disk(RESCUE_CONFIG)):
            path.unlink(missing_ok=True)

    async def unrescue(self, uuid: str) -> None:
        paths = self._require(uuid)
        async with self._lock(uuid):
            if not paths.rescue_config.exists():
                return
            await self.guests.force_stop(paths)
            self._remove_rescue_files(paths)
            self._discard_saved_state(paths)
            await self._start(paths, paths.load())

    # --- rebuild -----------------------------------------------------------------

    async def rebuild(self, spec: GuestSpec, power_on: bool = True, *,
                      preserve_ephemeral: bool = False) -> None:
        """A new root disk (and config drive) from spec.image; same uuid. Booted only
        when `power_on` (a stopped guest stays off until power_on).

        Swap is made anew; the ephemeral disk too unless preserve_ephemeral.
        """
        paths = self._require(spec.uuid)
        async with self._lock(spec.uuid):
            await self.guests.force_stop(paths)
            self._discard_saved_state(paths)
            self._remove_rescue_files(paths)
            for name in (ROOT, CONFIG, SWAP) + (() if preserve_ephemeral else (EPHEMERAL,)):
                paths.disk(name).unlink(missing_ok=True)
            guest_config = await self._create_disks(spec, paths, keep_ephemeral=True)
            if power_on:
                await self._start(paths, guest_config)

    # --- resize ------------------------------------------------------------------

    async def resize(self, uuid: str, spec: GuestSpec) -> None:
        """Cold resize on this host to spec's memory, vCPUs and disk sizes.

        The guest is shut down (ACPI, forced after [DEFAULT] shutdown_timeout); its
        old description and disks go to resize/ for revert_resize; the root and
        ephemeral disks grow (never shrink); swap is made anew. A guest that ran
        before runs again afterwards.
        """
        paths = self._require(uuid)
        async with self._lock(uuid):
            if paths.resize.exists():
                raise VirtDriverError(reason=f"a resize of {uuid} awaits confirm or revert")
            if paths.rescue_config.exists():
                raise VirtDriverError(reason=f"instance {uuid} is rescued; unrescue it first")
            if self.guests.pid(paths) is None and paths.state.exists():
                raise VirtDriverError(reason=f"instance {uuid} is suspended; resume it first")
            old = paths.load()
            was_running = self.guests.pid(paths) is not None
            await self._check_growth(old, spec)
            await self.guests.stop(paths, self.conf.get("DEFAULT", "shutdown_timeout"))
            paths.resize.mkdir()
            created: list[str] = []
            try:
                new = await self._resize_disks(old, spec, paths, created)
                write_atomic(paths.resize / "resize.json",
                             json.dumps({"was_running": was_running, "created": created}))
                write_atomic(paths.config, new.to_json())
                if was_running:
                    await self._start(paths, new)
            except BaseException as exc:
                LOG.warning("Resizing %s failed (%s); restoring its previous size", uuid, exc)
                await self.guests.force_stop(paths)
                self._restore_resize_backup(paths, created)
                if was_running and isinstance(exc, Exception):
                    await self._start(paths, old)
                raise

    async def _check_growth(self, old: GuestConfig, spec: GuestSpec) -> None:
        root = old.disk("root")
        assert root is not None
        info = await self.disks.info(Path(root.path), root.format, in_use=True)
        if spec.root_gb and spec.root_gb * GiB < info.virtual_size:
            raise VirtDriverError(reason=(
                f"can't shrink the root disk of {old.uuid} from {info.virtual_size} bytes "
                f"to {spec.root_gb} GiB"))
        if spec.ephemeral_gb < old.flavor.get("ephemeral_gb", 0):
            raise VirtDriverError(reason=(
                f"can't shrink the ephemeral disk of {old.uuid} from "
                f"{old.flavor.get('ephemeral_gb')} GiB to {spec.ephemeral_gb} GiB"))

    async def _resize_disks(self, old: GuestConfig, spec: GuestSpec, paths: InstancePaths,
                            created: list[str]) -> GuestConfig:
        backup = paths.resize
        shutil.copy2(paths.config, backup / "domain.json")
        root = old.disk("root")
        assert root is not None
        await asyncio.to_thread(shutil.copy2, root.path, backup / ROOT)
        root_size = (await self.disks.info(Path(root.path), root.format)).virtual_size
        if spec.root_gb * GiB > root_size:
            await self.disks.resize(Path(root.path), root.format, spec.root_gb * GiB)
        disks = [d for d in old.disks if d.id not in ("eph0", "swap")]
        bases = [b for b in old.bases]
        position = 1
        eph_path = paths.disk(EPHEMERAL)
        if spec.ephemeral_gb:
            if eph_path.exists():
                await asyncio.to_thread(shutil.copy2, eph_path, backup / EPHEMERAL)
                if spec.ephemeral_gb > old.flavor.get("ephemeral_gb", 0):
                    await self.disks.resize(eph_path, "qcow2", spec.ephemeral_gb * GiB)
            else:
                created.append(EPHEMERAL)
                eph = await self._blank_disk(eph_path, spec.ephemeral_gb * 1024, "ext4",
                                             "ephemeral0")
                bases.append(str(eph.path))
            disks.insert(position, Disk("eph0", str(eph_path), "qcow2", root.bus))
            position += 1
        swap_path = paths.disk(SWAP)
        if swap_path.exists():
            os.replace(swap_path, backup / SWAP)
        if spec.swap_mb:
            created.append(SWAP)
            swap = await self._blank_disk(swap_path, spec.swap_mb, "swap", "swap")
            bases.append(str(swap.path))
            disks.insert(position, Disk("swap", str(swap_path), "qcow2", root.bus))
        return dataclasses.replace(
            old, memory_mb=spec.memory_mb, vcpus=spec.vcpus, disks=tuple(disks),
            bases=tuple(dict.fromkeys(bases)),
            flavor={"root_gb": spec.root_gb, "ephemeral_gb": spec.ephemeral_gb,
                    "swap_mb": spec.swap_mb})

    def _restore_resize_backup(self, paths: InstancePaths, created: list[str]) -> None:
        for name in created:
            paths.disk(name).unlink(missing_ok=True)
        if paths.resize.is_dir():
            for entry in paths.resize.iterdir():
                if entry.name != "resize.json":
                    os.replace(entry, paths.dir / entry.name)
            shutil.rmtree(paths.resize, ignore_errors=True)

    async def confirm_resize(self, uuid: str) -> None:
        paths = self._require(uuid)
        async with self._lock(uuid):
            await asyncio.to_thread(shutil.rmtree, paths.resize, True)

    async def revert_resize(self, uuid: str) -> None:
        """Back to the description and disks from before resize; running if it ran then."""
        paths = self._require(uuid)
        async with self._lock(uuid):
            try:
                record = json.loads((paths.resize / "resize.json").read_text())
            except (OSError, ValueError):
                raise VirtDriverError(reason=f"instance {uuid} has no resize to revert") from None
            await self.guests.force_stop(paths)
            self._discard_saved_state(paths)
            self._restore_resize_backup(paths, list(record.get("created", [])))
            if record.get("was_running"):
                await self._start(paths, paths.load())

    # --- moves to another host (cold_migration.py) ----------------------------------

    async def prepare_move_in(self, spec: GuestSpec) -> MoveTarget:
        async with self._lock(spec.uuid):
            return await self.cold_moves.prepare(self._paths(spec.uuid), spec)

    async def migrate_disk_and_power_off(self, uuid: str, dest_host: str,
                                         target: MoveTarget) -> None:
        async with self._lock(uuid):
            await self.cold_moves.move_out(self._require(uuid), dest_host, target)

    async def finish_migration(self, spec: GuestSpec, power_on: bool) -> None:
        async with self._lock(spec.uuid):
            await self.cold_moves.finish(self._paths(spec.uuid), spec, power_on)

    async def confirm_migration(self, uuid: str) -> None:
        async with self._lock(uuid):
            await self.cold_moves.confirm(self._paths(uuid))

    async def finish_revert_migration(self, spec: GuestSpec, power_on: bool) -> None:
        async with self._lock(spec.uuid):
            await self.cold_moves.revert(self._paths(spec.uuid), power_on)

    # --- image cache ---------------------------------------------------------------

    async def manage_image_cache(self) -> list[str]:
        """Remove base images no guest uses (when [qemu] remove_unused_base_images)."""
        if not self.conf.get("qemu", "remove_unused_base_images"):
            return []
        in_use: set[Path] = set()
        configs = [path for paths in self._all_paths()
                   for path in (paths.config, paths.rescue_config, paths.resize / "domain.json")]
        for path in configs + cold_migration.kept_configs(self.instances_path):
            try:
                in_use.update(Path(b) for b in GuestConfig.from_json(path.read_text()).bases)
            except FileNotFoundError:
                continue
            except (ValueError, KeyError, TypeError) as exc:
                LOG.warning("Unreadable %s (%s): keeping every base image", path, exc)
                return []
        return await self.cache.cleanup(
            in_use, self.conf.get("qemu", "remove_unused_original_minimum_age_seconds"))

    # --- live migration (live_moves.py) ------------------------------------------------

    async def pre_live_migration(self, spec: GuestSpec, block_migration: bool,
                                 paused: bool) -> MoveTarget:
        return await self.live.prepare(spec, block_migration)

    async def live_migration(self, uuid: str, dest_host: str, block_migration: bool,
                             progress: Callable[[MigrationProgress], Awaitable[None]],
                             target: MoveTarget) -> None:
        await self.live.migrate(uuid, dest_host, block_migration, progress, target)

    async def live_migration_force_complete(self, uuid: str) -> None:
        await self.live.force_complete(uuid)

    async def live_migration_abort(self, uuid: str) -> None:
        await self.live.abort(uuid)

    async def post_live_migration_at_destination(self, spec: GuestSpec,
                                                 paused: bool) -> None:
        await self.live.finish(spec, paused)

    # --- interfaces (interfaces.py) ---------------------------------------------------

    async def attach_interface(self, uuid: str, vif: Vif) -> None:
        paths = self._require(uuid)
        async with self._lock(uuid):
            await self.interfaces.attach(paths, vif)

    async def detach_interface(self, uuid: str, vif: Vif) -> None:
        paths = self._require(uuid)
        async with self._lock(uuid):
            await self.interfaces.detach(paths, vif)

    # --- internals -----------------------------------------------------------------

    def _paths(self, uuid: str) -> InstancePaths:
        if not _UUID.match(uuid):
            raise VirtDriverError(reason=f"{uuid!r} is not an instance uuid")
        return InstancePaths(self.instances_path, uuid)

    def _require(self, uuid: str) -> InstancePaths:
        paths = self._paths(uuid)
        if not paths.config.exists():
            raise InstanceNotFoundOnHost(uuid=uuid)
        return paths

    def _lock(self, uuid: str) -> asyncio.Lock:
        return self._locks.setdefault(uuid, asyncio.Lock())

