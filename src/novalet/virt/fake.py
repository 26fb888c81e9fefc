"""The fake driver: the whole driver interface in memory, as its executable specification.

Functional tests and scale benchmarks use it. Host resources come from the
[fake] config section; `spawn_delay` simulates a slow hypervisor.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable

from novalet import config, exceptions
from novalet.compute import diagnostics as diags
from novalet.compute.states import PowerState
from novalet.console.types import ConsoleTarget
from novalet.network.model import Vif
from novalet.virt.driver import (ComputeDriver, ConsoleUnavailable, Diagnostics,
                                 DriverCapabilities, GuestInfo, GuestSpec, HostResources,
                                 InstanceNotFoundOnHost, LiveMigrationAborted,
                                 MigrationProgress, MoveTarget, VirtDriverError)

FAKE_UPTIME = " 08:32:11 up 93 days, 18:25, 12 users,  load average: 0.20, 0.12, 0.14"

# RFB pixel format: 32 bpp, depth 24, little-endian, true colour, max 255 each,
# red/green/blue shifts 16/8/0, 3 bytes of padding.
_RFB_PIXEL_FORMAT = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)

_Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve_rfb(uuid: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A minimal RFB 3.8 server (no security, 640x480) named after the instance, so a
    client can tell which guest's display it reached; it ignores all input."""
    writer.write(b"RFB 003.008\n")
    await reader.readexactly(12)
    writer.write(b"\x01\x01")  # one security type: None
    await reader.readexactly(1)
    writer.write(b"\x00\x00\x00\x00")  # SecurityResult OK
    await reader.readexactly(1)  # ClientInit
    name = uuid.encode("ascii")
    writer.write(struct.pack(">HH", 640, 480) + _RFB_PIXEL_FORMAT + struct.pack(">I", len(name)) + name)
    await writer.drain()
    while await reader.read(65536):
        pass


async def _serve_echo(greeting: bytes, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
    """A greeting naming the display and instance, then every byte echoed back."""
    writer.write(greeting)
    await writer.drain()
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


class _FakeDisplay:
    """One guest display: a loopback TCP server and the connections it has open."""

    def __init__(self, handler: _Handler) -> None:
        self.handler = handler
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> ConsoleTarget:
        self.server = await asyncio.start_server(self._connected, "127.0.0.1", 0)
        return ConsoleTarget("127.0.0.1", self.server.sockets[0].getsockname()[1])

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            await self.handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        finally:
            self.writers.discard(writer)
            writer.close()

    def close(self) -> None:
        """Stop listening and hang up on the clients (a destroyed guest's display)."""
        if self.server is not None:
            self.server.close()
        for writer in list(self.writers):
            writer.close()


class _LiveMigration:
    """What force-complete and abort tell a running fake live migration."""

    def __init__(self) -> None:
        self.forced = False
        self.aborted = False


def _fail_if_asked(spec: GuestSpec, step: str) -> None:
    """Metadata `fake_<step>_error` makes that step fail (tests of the rollbacks)."""
    reason = spec.metadata.get(f"fake_{step}_error")
    if reason:
        raise VirtDriverError(reason=reason)


class FakeDriver(ComputeDriver):
    # Every optional operation and display, in memory. A test sets another
    # DriverCapabilities on one driver object to play a hypervisor without one.
    capabilities = DriverCapabilities(
        supports_reboot=True, supports_pause=True, supports_suspend=True,
        supports_snapshot=True, supports_rescue=True, supports_rebuild=True,
        supports_resize=True, supports_attach_interface=True, supports_vnc_console=True,
        supports_spice_console=True, supports_serial_console=True,
        supports_set_admin_password=True, supports_trigger_crash_dump=True,
        supports_migrate=True, supports_live_migrate=True)

    def __init__(self, conf: config.Config) -> None:
        self.conf = conf
        self.host = conf.get("DEFAULT", "host")
        self.guests: dict[str, PowerState] = {}
        self.consoles: dict[str, list[str]] = {}
        self.specs: dict[str, GuestSpec] = {}
        self.rescued: set[str] = set()
        self.resize_backup: dict[str, GuestSpec] = {}
        self.admin_passwords: dict[str, str] = {}  # what changePassword set, per guest
        self.crash_dumps: dict[str, int] = {}  # NMIs injected, per guest
        self.resize_power: dict[str, PowerState] = {}
        # Guests moved away, kept until confirm (dropped) or revert (restarted here).
        self.migrated_out: dict[str, GuestSpec] = {}
        # Guests prepared for (prepare_move_in) until finish_migration or destroy: what
        # a real destination holds open meanwhile (an NBD server, a port).
        self.incoming: dict[str, GuestSpec] = {}
        self.live_migrations: dict[str, _LiveMigration] = {}  # running ones, by uuid
        self.early_aborts: set[str] = set()  # aborted before their job started
        self.displays: dict[tuple[str, str], tuple[_FakeDisplay, ConsoleTarget]] = {}
        self._displays_lock = asyncio.Lock()

    async def init_host(self, host: str) -> None:
        self.host = host

    async def get_available_resource(self) -> HostResources:
        return HostResources(hypervisor_hostname=self.host, hypervisor_type="fake",
                             vcpus=self.conf.get("fake", "vcpus"),
                             memory_mb=self.conf.get("fake", "memory_mb"),
                             local_gb=self.conf.get("fake", "disk_gb"),
                             cpu_info={"arch": "x86_64", "model": "fake"},
                             hypervisor_version=1000)

    async def get_host_uptime(self) -> str:
        """A fixed line in uptime(1)'s format."""
        return FAKE_UPTIME

    async def list_instances(self) -> list[str]:
        return list(self.guests)

    async def spawn(self, spec: GuestSpec) -> None:
        delay = self.conf.get("fake", "spawn_delay")
        if delay:
            await asyncio.sleep(delay)
        if spec.metadata.get("fake_spawn_error"):
            raise VirtDriverError(reason=spec.metadata["fake_spawn_error"])
        self.guests[spec.uuid] = PowerState.RUNNING
        self.specs[spec.uuid] = spec
        # A boot log of a few lines, as a real guest prints (clients that wait for
        # a console log, Tempest among them, expect more than one line).
        for line in (f"fake firmware: {spec.vcpus} vCPUs, {spec.memory_mb} MiB",
                     f"fake kernel: root disk {spec.root_gb} GiB, "
                     f"{len(spec.network_info)} network interfaces",
                     f"fake init: hostname {spec.hostname}",
                     f"fake guest {spec.hostname} ({spec.uuid}) booted"):
            self._log(spec.uuid, line)

    async def destroy(self, uuid: str) -> None:
        self.guests.pop(uuid, None)
        self.consoles.pop(uuid, None)
        self.specs.pop(uuid, None)
        self.rescued.discard(uuid)
        self.resize_backup.pop(uuid, None)
        self.resize_power.pop(uuid, None)
        self.incoming.pop(uuid, None)
        self.close_consoles(uuid)

    async def cleanup_host(self) -> None:
        self.close_consoles()

    async def get_console(self, uuid: str, kind: str) -> ConsoleTarget:
        """A loopback server per (guest, kind), started on first use: an RFB server
        for "vnc", a greeting-and-echo server for "spice" and "serial". A guest that
        is off has none (as a stopped QEMU guest)."""
        self._require(uuid)
        if self.guests[uuid] not in (PowerState.RUNNING, PowerState.PAUSED):
            raise exceptions.Conflict(reason=f"guest {uuid} is not running")
        if kind == "vnc":
            handler: _Handler = lambda r, w: _serve_rfb(uuid, r, w)  # noqa: E731
        elif kind in ("spice", "serial"):
            greeting = f"fake-{kind} {uuid}\n".encode()
            handler = lambda r, w: _serve_echo(greeting, r, w)  # noqa: E731
        else:
            raise ConsoleUnavailable(console_type=kind)
        async with self._displays_lock:
            if (uuid, kind) not in self.displays:
                display = _FakeDisplay(handler)
                self.displays[(uuid, kind)] = (display, await display.start())
            return self.displays[(uuid, kind)][1]

    def close_consoles(self, uuid: str | None = None) -> None:
        """Close the display servers of one guest (all guests when None)."""
        for key in [k for k in self.displays if uuid is None or k[0] == uuid]:
            self.displays.pop(key)[0].close()

    def _require(self, uuid: str) -> None:
        if uuid not in self.guests:
            raise InstanceNotFoundOnHost(uuid=uuid)

    def _set(self, uuid: str, state: PowerState, line: str) -> None:
        self._require(uuid)
        self.guests[uuid] = state
        self._log(uuid, line)

    def _log(self, uuid: str, line: str) -> None:
        self.consoles.setdefault(uuid, []).append(line)

    async def attach_interface(self, uuid: str, vif: Vif) -> None:
        self._require(uuid)
        spec = self.specs[uuid]
        if all(v.get("id") != vif.id for v in spec.network_info):
            spec.network_info.append(vif.to_dict())
        self._log(uuid, f"attached NIC {vif.address}")

    async def detach_interface(self, uuid: str, vif: Vif) -> None:
        self._require(uuid)
        spec = self.specs[uuid]
        spec.network_info[:] = [v for v in spec.network_info if v.get("id") != vif.id]
        self._log(uuid, f"detached NIC {vif.address}")

    async def reboot(self, uuid: str, hard: bool) -> None:
        self._set(uuid, PowerState.RUNNING, "hard reset" if hard else "rebooting")

    async def power_off(self, uuid: str, timeout: float = 0) -> None:
        self._set(uuid, PowerState.SHUTDOWN, "power off")
        self.close_consoles(uuid)

    async def power_on(self, uuid: str) -> None:
        self._set(uuid, PowerState.RUNNING, "power on")

    async def pause(self, uuid: str) -> None:
        self._set(uuid, PowerState.PAUSED, "paused")

    async def unpause(self, uuid: str) -> None:
        self._set(uuid, PowerState.RUNNING, "unpaused")

    async def suspend(self, uuid: str) -> None:
        self._set(uuid, PowerState.SUSPENDED, "suspended")
        self.close_consoles(uuid)

    async def resume(self, uuid: str) -> None:
        self._set(uuid, PowerState.RUNNING, "resumed")

    async def get_info(self, uuid: str) -> GuestInfo:
        self._require(uuid)
        return GuestInfo(power_state=self.guests[uuid])

    async def get_diagnostics(self, uuid: str) -> Diagnostics:
        """Fixed counters, shaped by the guest's own spec: a cpu per vCPU, its memory,
        its root (and ephemeral) disk, a NIC per interface."""
        self._require(uuid)
        spec = self.specs[uuid]
        disks = [diags.DiskDiagnostics("root", 262144, 112, 5778432, 488, 0)]
        if spec.ephemeral_gb:
            disks.append(diags.DiskDiagnostics("eph0", 4096, 2, 0, 0, 0))
        nics = [diags.NicDiagnostics(f"tap{i}", vif.get("address"), 2070139, 0, 0, 26701,
                                     None, 140208, 0, 0, 662, None)
                for i, vif in enumerate(spec.network_info)]
        return Diagnostics(
            state="running" if self.guests[uuid] == PowerState.RUNNING else "paused",
            driver=diags.API_DRIVER, hypervisor="fake", hypervisor_os="fake", uptime=46664,
            config_drive=spec.config_drive,
            memory_details=diags.MemoryDiagnostics(spec.memory_mb, spec.memory_mb // 2),
            cpu_details=[diags.CpuDiagnostics(i, 17300000000, 15) for i in range(spec.vcpus)],
            nic_details=nics, disk_details=disks)

    async def get_console_output(self, uuid: str) -> str:
        self._require(uuid)
        # No newline after the last line: the cursor stays there, as on a guest's
        # console, so a tail of N lines (os-getConsoleOutput length) reads as N.
        return "\n".join(self.consoles.get(uuid, []))

    async def snapshot(self, uuid: str, dest: str) -> str:
        self._require(uuid)
        with open(dest, "wb") as handle:
            handle.write(f"fake snapshot of {uuid}\n".encode())
        return "raw"

    async def rescue(self, uuid: str, rescue: GuestSpec) -> None:
        self._set(uuid, PowerState.RUNNING, f"rescue boot from image {rescue.image_ref}")
        self.rescued.add(uuid)

    async def unrescue(self, uuid: str) -> None:
        self._set(uuid, PowerState.RUNNING, "booted from own disk")
        self.rescued.discard(uuid)

    async def rebuild(self, spec: GuestSpec, power_on: bool = True) -> None:
        self._set(spec.uuid, PowerState.RUNNING if power_on else PowerState.SHUTDOWN,
                  f"rebuilt from image {spec.image_ref}" + ("" if power_on else ", left off"))
        self.specs[spec.uuid] = spec

    async def resize(self, uuid: str, spec: GuestSpec) -> None:
        self._require(uuid)
        # The power state before is what revert goes back to: a stopped guest stays off.
        was = self.guests[uuid]
        self.resize_backup[uuid] = self.specs[uuid]
        self.resize_power[uuid] = was
        self.specs[uuid] = spec
        self._set(uuid, PowerState.RUNNING if was == PowerState.RUNNING else PowerState.SHUTDOWN,
                  f"resized to {spec.memory_mb} MB")

    async def confirm_resize(self, uuid: str) -> None:
        self._require(uuid)
        self.resize_backup.pop(uuid, None)
        self.resize_power.pop(uuid, None)

    async def revert_resize(self, uuid: str) -> None:
        self._require(uuid)
        self.specs[uuid] = self.resize_backup.pop(uuid)
        was = self.resize_power.pop(uuid, PowerState.RUNNING)
        self._set(uuid, PowerState.RUNNING if was == PowerState.RUNNING else PowerState.SHUTDOWN,
                  f"reverted to {self.specs[uuid].memory_mb} MB")

    async def set_admin_password(self, uuid: str, password: str) -> None:
        """Kept in admin_passwords; a guest that is not running can't take it."""
        self._require_running(uuid)
        self.admin_passwords[uuid] = password
        self._log(uuid, "admin password changed")

    async def trigger_crash_dump(self, uuid: str) -> None:
        """Counted in crash_dumps; a guest that is not running has no vCPU to take it."""
        self._require_running(uuid)
        self.crash_dumps[uuid] = self.crash_dumps.get(uuid, 0) + 1
        self._log(uuid, "NMI received: kernel crash dump")

    def _require_running(self, uuid: str) -> None:
        self._require(uuid)
        if self.guests[uuid] not in (PowerState.RUNNING, PowerState.PAUSED):
            raise exceptions.Conflict(reason=f"guest {uuid} is not running")

    # --- moves to another host -------------------------------------------------

    async def prepare_move_in(self, spec: GuestSpec) -> MoveTarget:
        self.incoming[spec.uuid] = spec
        return MoveTarget()

    async def migrate_disk_and_power_off(self, uuid: str, dest_host: str,
                                         target: MoveTarget) -> None:
        self._require(uuid)
        _fail_if_asked(self.specs[uuid], "migrate")
        self.migrated_out[uuid] = self.specs.pop(uuid)
        self._log(uuid, f"powered off, disks sent to {dest_host}")
        self.guests.pop(uuid)
        self.close_consoles(uuid)

    async def finish_migration(self, spec: GuestSpec, power_on: bool) -> None:
        _fail_if_asked(spec, "finish_migration")
        self.incoming.pop(spec.uuid, None)
        self.specs[spec.uuid] = spec
        self.guests[spec.uuid] = PowerState.RUNNING if power_on else PowerState.SHUTDOWN
        self._log(spec.uuid, f"arrived with {spec.memory_mb} MB"
                  + ("" if power_on else ", left off"))

    async def confirm_migration(self, uuid: str) -> None:
        self.migrated_out.pop(uuid, None)

    async def finish_revert_migration(self, spec: GuestSpec, power_on: bool) -> None:
        self.specs[spec.uuid] = self.migrated_out.pop(spec.uuid, spec)
        self.guests[spec.uuid] = PowerState.RUNNING if power_on else PowerState.SHUTDOWN
        self._log(spec.uuid, "back from a reverted migration")

    async def live_migration(self, uuid: str, dest_host: str, block_migration: bool,
                             progress: Callable[[MigrationProgress], Awaitable[None]],
                             target: MoveTarget) -> None:
        """`[fake] live_migration_steps` rounds of `live_migration_step_delay` seconds,
        each reported; force-complete ends the rounds, abort raises."""
        self._require(uuid)
        spec = self.specs[uuid]
        if uuid in self.early_aborts:
            self.early_aborts.discard(uuid)
            raise LiveMigrationAborted(uuid=uuid)
        state = self.live_migrations[uuid] = _LiveMigration()
        memory = spec.memory_mb * 2**20
        disk = spec.root_gb * 2**30 if block_migration else 0
        steps = max(1, self.conf.get("fake", "live_migration_steps"))
        try:
            for step in range(1, steps + 1):
                await asyncio.sleep(self.conf.get("fake", "live_migration_step_delay"))
                if state.aborted:
                    raise LiveMigrationAborted(uuid=uuid)
                if state.forced:
                    break
                done_memory, done_disk = memory * step // steps, disk * step // steps
                await progress(MigrationProgress(memory, done_memory, memory - done_memory,
                                                 disk, done_disk, disk - done_disk))
            if state.aborted:
                raise LiveMigrationAborted(uuid=uuid)
            _fail_if_asked(spec, "live_migration")
        finally:
            self.live_migrations.pop(uuid, None)
        self._log(uuid, f"live-migrated to {dest_host}")
        self.guests.pop(uuid, None)
        self.specs.pop(uuid, None)
        self.close_consoles(uuid)

    def _live(self, uuid: str) -> _LiveMigration:
        state = self.live_migrations.get(uuid)
        if state is None:
            raise VirtDriverError(reason=f"no live migration of {uuid} is running here")
        return state

    async def live_migration_force_complete(self, uuid: str) -> None:
        self._live(uuid).forced = True

    async def live_migration_abort(self, uuid: str) -> None:
        state = self.live_migrations.get(uuid)
        if state is None:
            self.early_aborts.add(uuid)
        else:
            state.aborted = True

    async def post_live_migration_at_destination(self, spec: GuestSpec,
                                                 paused: bool) -> None:
        self.specs[spec.uuid] = spec
        self.guests[spec.uuid] = PowerState.PAUSED if paused else PowerState.RUNNING
        self._log(spec.uuid, "live-migrated here")
