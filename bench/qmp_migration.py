"""bench/migrate.py's reference: a live migration done by hand over QMP between two
QEMU processes of the same guest, each "host" a directory of its own (no shared
storage).

The guest is started with the driver's own command line (cmdline.build of a
GuestConfig shaped as the driver's spawn shapes it for the test image: a qcow2
overlay of the cached image, a config drive). A move: the destination gets the
config drive (a file copy) and an empty overlay of its own copy of the image,
its QEMU starts with `-incoming defer`, exports that disk over NBD and waits on
a TCP port; the source mirrors its disk there (`drive-mirror`, sync top, until
ready), then `migrate`s with the [qemu] live_migration_* settings (the downtime
limit stepped up as the driver steps it); at pre-switchover (the guest paused,
its memory almost all sent) the mirror is completed without a pivot, then the
migration continues, and the destination, started without -S as the driver's
live migration starts it, runs the guest as soon as the last state arrived. Its
NBD server stops and the source quits after that, untimed.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import shutil
import subprocess
import time
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migration_figures import DIRTY_MARKER, Sample, downtime_steps, limit_at
from realcloud import MARKER, free_port

from novalet import config
from novalet.compute.driver_types import GuestSpec
from novalet.virt.qemu import accel, cmdline, configdrive, monitor
from novalet.virt.qemu.commands import CommandRunner
from novalet.virt.qemu.disks import GiB, Disks
from novalet.virt.qemu.guest import MAX_BANDWIDTH
from novalet.virt.qemu.layout import CONFIG, ROOT, Disk, GuestConfig, InstancePaths, mac_for

LOOPBACK = "127.0.0.1"
EXPORT = "root"  # the NBD export (and QEMU drive id) of the root disk
MIRROR_JOB = "mirror-root"
POLL = 0.01
SWITCHOVER_POLL = 0.002
"""Seconds between looks once QEMU expects to fit the rest in the downtime limit: the
guest waits paused at pre-switchover until one sees it (the driver does the same)."""


class HandMigrationFailed(RuntimeError):
    pass


@dataclass
class HandHost:
    """A 'host': its own image cache and instances directory."""

    name: str
    root: Path

    @property
    def base(self) -> Path:
        return self.root / "cache" / "novalet-tiny.qcow2"

    def paths(self, uuid: str) -> InstancePaths:
        return InstancePaths(self.root / "instances", uuid)


@dataclass
class RunningGuest:
    host: HandHost
    paths: InstancePaths
    config: GuestConfig
    proc: subprocess.Popen[bytes]


def migration_settings(conf: config.Config) -> dict[str, Any]:
    """The [qemu] live_migration_* options the driver moves guests with."""
    return {name: conf.get("qemu", f"live_migration_{name}") for name in (
        "bandwidth", "downtime", "downtime_steps", "downtime_delay",
        "permit_auto_converge", "permit_post_copy")}


class HandMigrations:
    """Guests started and moved by hand between hosts `a` and `b` under `work`."""

    def __init__(self, work: Path, image: Path, conf: config.Config) -> None:
        self.conf = conf
        self.settings = migration_settings(conf)
        self.hosts = [HandHost("a", work / "a"), HandHost("b", work / "b")]
        for host in self.hosts:  # each host caches the image itself: nothing shared
            host.base.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(image, host.base)
        self.disks = Disks(CommandRunner())
        self.host_settings: cmdline.HostSettings | None = None
        self.running: list[RunningGuest] = []

    async def _host_settings(self) -> cmdline.HostSettings:
        """What the driver's host settings are with this config (consoles on files)."""
        if self.host_settings is None:
            accelerator = await accel.detect(self.conf.get("qemu", "virt_type"),
                                             CommandRunner(), cmdline.QEMU)
            vnc = (self.conf.get("vnc", "server_listen")
                   if self.conf.get("vnc", "enabled") else None)
            self.host_settings = cmdline.HostSettings(
                accel=accelerator, tcg_tb_size=self.conf.get("qemu", "tcg_tb_size"),
                vnc_listen=vnc, network=self.conf.get("qemu", "network"))
        return self.host_settings

    # --- starting ---------------------------------------------------------------

    async def boot(self, memory_mb: int, user_data: str, timeout: float = 180
                   ) -> RunningGuest:
        """A new guest on host a, booted until its agent's ready line (and, with
        dirtying user data, the dirtier's line before it)."""
        host = self.hosts[0]
        uuid = str(uuidlib.uuid4())
        paths = host.paths(uuid)
        paths.dir.mkdir(parents=True)
        spec = GuestSpec(uuid=uuid, name=f"hand-{memory_mb}", hostname=f"hand-{memory_mb}",
                         vcpus=1, memory_mb=memory_mb, root_gb=1, ephemeral_gb=0,
                         swap_mb=0, image_ref="novalet-tiny", config_drive=True,
                         user_data=base64.b64encode(user_data.encode()).decode())
        await asyncio.to_thread(configdrive.build, spec, paths.disk(CONFIG))
        await self.disks.create_overlay(paths.disk(ROOT), host.base, "qcow2", GiB)
        guest_config = GuestConfig(
            uuid=uuid, name=spec.name, memory_mb=memory_mb, vcpus=1,
            machine_type=self.conf.get("qemu", "machine_type"),
            disks=(Disk("root", str(paths.disk(ROOT)), "qcow2", "virtio", boot_index=0),
                   Disk("config", str(paths.disk(CONFIG)), "raw", "ide", "cdrom",
                        readonly=True)),
            mac=mac_for(uuid), flavor={"root_gb": 1, "ephemeral_gb": 0, "swap_mb": 0})
        guest = await self._launch(host, paths, guest_config, incoming=False)
        wanted = [MARKER.format(uuid=uuid)] + ([DIRTY_MARKER] if DIRTY_MARKER in user_data
                                               else [])
        await wait_console(paths.console_log, wanted, timeout)
        return guest

    async def _launch(self, host: HandHost, paths: InstancePaths, guest_config: GuestConfig,
                      incoming: bool) -> RunningGuest:
        argv = cmdline.build(guest_config, paths, await self._host_settings(),
                             incoming=incoming)
        if incoming:  # as the driver's live migration starts it: running once it arrived
            argv.remove("-S")
        log = open(paths.dir / "qemu.log", "wb")
        proc = subprocess.Popen(argv, cwd=paths.dir, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        guest = RunningGuest(host, paths, guest_config, proc)
        self.running.append(guest)
        deadline = time.monotonic() + 30
        while not await answers(paths):  # its socket may exist before it listens
            if proc.poll() is not None or time.monotonic() > deadline:
                raise HandMigrationFailed(f"QEMU did not start: "
                                          f"{(paths.dir / 'qemu.log').read_text()}")
            await asyncio.sleep(POLL)
        return guest

    def stop_all(self) -> None:
        """Kill every QEMU this object started (safe to call more than once)."""
        for guest in self.running:
            if guest.proc.poll() is None:
                guest.proc.kill()
            guest.proc.wait()
        self.running.clear()

    # --- moving -----------------------------------------------------------------

    async def migrate(self, guest: RunningGuest) -> tuple[RunningGuest, Sample]:
        """Move `guest` to the other host; the guest there and the figures."""
        started = time.monotonic()
        dest = self.hosts[1] if guest.host is self.hosts[0] else self.hosts[0]
        arrived = await self._prepare_destination(guest, dest)
        nbd_port, migration_port = free_port(), free_port()
        schedule = self._downtime_schedule(guest.config.memory_mb)
        async with monitor.connect(guest.paths.qmp) as src, \
                monitor.connect(arrived.paths.qmp) as dst:
            await self._set_up_both(src, dst, schedule[0][1])
            await dst.execute("nbd-server-start", {"addr": {"type": "inet", "data": {
                "host": LOOPBACK, "port": str(nbd_port)}}})
            node = await node_name(dst, "root")
            await dst.execute("block-export-add", {"type": "nbd", "id": EXPORT,
                                                   "node-name": node, "name": EXPORT,
                                                   "writable": True})
            await dst.execute("migrate-incoming",
                              {"uri": f"tcp:{LOOPBACK}:{migration_port}"})
            await src.execute("drive-mirror", {
                "job-id": MIRROR_JOB, "device": "root", "sync": "top", "mode": "existing",
                "format": "raw", "target": f"nbd://{LOOPBACK}:{nbd_port}/{EXPORT}"})
            await wait_mirror_ready(src)
            memory_started = time.monotonic()
            await src.execute("migrate", {"uri": f"tcp:{LOOPBACK}:{migration_port}"})
            info = await self._follow(src, schedule, started)
            if await wait_status(dst, ("running", "paused")) == "paused":
                await dst.execute("cont")  # a QEMU whose command line kept -S
                await wait_status(dst, ("running",))
            ended = time.monotonic()
            await dst.execute("nbd-server-stop")
            await src.execute("quit")
        await self._retire(guest)
        ram = info.get("ram", {})
        return arrived, Sample(
            total_s=ended - started, downtime_ms=float(info["downtime"]),
            memory_pass_s=ended - memory_started,
            iterations=int(ram.get("dirty-sync-count", 0)),
            sent_mib=ram.get("transferred", 0) / 2**20)

    async def _prepare_destination(self, guest: RunningGuest, dest: HandHost
                                   ) -> RunningGuest:
        """Its config drive copied, an empty overlay of dest's image, QEMU incoming."""
        paths = dest.paths(guest.config.uuid)
        paths.dir.mkdir(parents=True)
        await asyncio.to_thread(shutil.copyfile, guest.paths.disk(CONFIG), paths.disk(CONFIG))
        await self.disks.create_overlay(paths.disk(ROOT), dest.base, "qcow2", GiB)
        disks = tuple(Disk(d.id, str(paths.disk(Path(d.path).name)), d.format, d.bus,
                           d.device, d.boot_index, d.readonly) for d in guest.config.disks)
        moved = dataclasses.replace(guest.config, disks=disks)
        return await self._launch(dest, paths, moved, incoming=True)

    def _downtime_schedule(self, memory_mb: int) -> list[tuple[float, int]]:
        # GiB to copy as the driver weighs them: memory and the root disk, each at least 2.
        data_gib = max(memory_mb / 1024, 2.0) + 2.0
        return downtime_steps(self.settings["downtime"], self.settings["downtime_steps"],
                              self.settings["downtime_delay"], data_gib)

    async def _set_up_both(self, src: monitor.Monitor, dst: monitor.Monitor,
                           downtime_ms: int) -> None:
        caps = [{"capability": "auto-converge", "state": True}] \
            if self.settings["permit_auto_converge"] else []
        if self.settings["permit_post_copy"]:
            caps.append({"capability": "postcopy-ram", "state": True})
        if caps:
            for mon in (src, dst):
                await mon.execute("migrate-set-capabilities", {"capabilities": caps})
        # The source stops before it hands its disks over, so that the mirror can be
        # completed while the guest is paused and its disk still active (as libvirt).
        await src.execute("migrate-set-capabilities", {"capabilities": [
            {"capability": "pause-before-switchover", "state": True}]})
        bandwidth = self.settings["bandwidth"] * 2**20 or MAX_BANDWIDTH
        await src.execute("migrate-set-parameters", {"max-bandwidth": bandwidth,
                                                     "downtime-limit": downtime_ms})

    async def _follow(self, src: monitor.Monitor, schedule: list[tuple[float, int]],
                      started: float) -> dict[str, Any]:
        """Poll query-migrate until QEMU is done, stepping the downtime limit up as
        `schedule` says; QEMU's last answer."""
        limit, switched = schedule[0][1], False
        while True:
            wanted = limit_at(schedule, time.monotonic() - started)
            if wanted != limit:
                limit = wanted
                await src.execute("migrate-set-parameters", {"downtime-limit": limit})
            info: dict[str, Any] = await src.execute("query-migrate")
            if info.get("status") == "pre-switchover" and not switched:
                switched = True
                # Paused: the mirror completes (no pivot: the copy is the destination's).
                await src.execute("block-job-cancel", {"device": MIRROR_JOB})
                await wait_no_jobs(src)
                await src.execute("migrate-continue", {"state": "pre-switchover"})
            if info.get("status") == "completed":
                return info
            if info.get("status") in ("failed", "cancelled"):
                raise HandMigrationFailed(f"migration {info.get('status')}: "
                                          f"{info.get('error-desc', '')}")
            expected = info.get("expected-downtime")
            await asyncio.sleep(SWITCHOVER_POLL if expected is not None and expected <= limit
                                else POLL)

    async def _retire(self, guest: RunningGuest) -> None:
        """The source's QEMU gone and its instance directory removed (untimed)."""
        try:
            await asyncio.to_thread(guest.proc.wait, 30)
        except subprocess.TimeoutExpired:
            guest.proc.kill()
            guest.proc.wait()
        self.running.remove(guest)
        shutil.rmtree(guest.paths.dir, ignore_errors=True)


async def answers(paths: InstancePaths) -> bool:
    """Whether the guest's QEMU takes a QMP session now."""
    if not paths.qmp.exists():
        return False
    try:
        async with monitor.connect(paths.qmp):
            return True
    except monitor.MonitorUnreachable:
        return False


async def node_name(mon: monitor.Monitor, device: str) -> str:
    for block in await mon.execute("query-block"):
        if block.get("device") == device and "inserted" in block:
            return str(block["inserted"]["node-name"])
    raise HandMigrationFailed(f"no drive {device} in query-block")


async def wait_mirror_ready(mon: monitor.Monitor, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = {job["device"]: job for job in await mon.execute("query-block-jobs")}
        job = jobs.get(MIRROR_JOB)
        if job is None:
            raise HandMigrationFailed("the disk mirror ended before it was ready")
        if job.get("ready"):
            return
        await asyncio.sleep(POLL)
    raise HandMigrationFailed(f"the disk mirror was not ready within {timeout}s")


async def wait_no_jobs(mon: monitor.Monitor, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while await mon.execute("query-block-jobs"):
        if time.monotonic() > deadline:
            raise HandMigrationFailed("the disk mirror did not complete")
        await asyncio.sleep(POLL)


async def wait_status(mon: monitor.Monitor, wanted: tuple[str, ...], timeout: float = 60
                      ) -> str:
    """Until QEMU's run state is one of `wanted`; that state."""
    deadline = time.monotonic() + timeout
    while (status := str((await mon.execute("query-status"))["status"])) not in wanted:
        if time.monotonic() > deadline:
            raise HandMigrationFailed(f"the destination is {status}, never {' or '.join(wanted)}")
        await asyncio.sleep(SWITCHOVER_POLL)
    return status


async def wait_console(log: Path, wanted: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if all(line in text for line in wanted):
            return
        if "Out of memory" in text:
            break  # the guest's kernel killed something: it won't get there
        await asyncio.sleep(0.1)
    tail = "\n".join(text.splitlines()[-15:])
    raise HandMigrationFailed(f"the guest never printed {wanted} on its console ({log}) "
                              f"within {timeout:.0f}s; its last lines:\n{tail}")
