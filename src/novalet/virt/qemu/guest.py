"""Starting, stopping, saving and querying one guest's QEMU process.

The driver decides what to do; this module knows how, through three seams:
QemuProcesses (launch/find/kill), a MonitorConnector (QMP sessions) and the
host settings the command line needs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

from novalet.compute.states import PowerState
from novalet.virt.driver import VirtDriverError
from novalet.virt.qemu import cmdline
from novalet.virt.qemu.commands import CommandFailed
from novalet.virt.qemu.consoles import PortAllocator, record_vnc
from novalet.virt.qemu.layout import GuestConfig, InstancePaths
from novalet.virt.qemu.monitor import Monitor, MonitorConnector, MonitorUnreachable
from novalet.virt.qemu.process import QemuProcesses

LOG = logging.getLogger(__name__)

QUIT_TIMEOUT = 5.0
"""Seconds `quit` over QMP gets before QEMU is killed outright."""
KILL_TIMEOUT = 10.0
ACPI_RETRY_INTERVAL = 10.0
"""Seconds between presses of the ACPI power button while waiting for a guest to stop."""
MIGRATION_TIMEOUT = 600.0
"""Longest a suspend (or a resume) may spend saving (or loading) guest memory."""
MAX_BANDWIDTH = 1 << 40
"""Bytes per second for migration to a file: unthrottled (QEMU's default is 32 MiB/s)."""
PORT_ATTEMPTS = 5
"""Launches tried with fresh console ports when another program took one meanwhile."""
PORT_CLASHES = ("Address already in use", "failed to initialize spice server")
"""What QEMU says (then exits) when its serial port or SPICE display can't bind."""

QMP_STATUS_POWER = {
    "running": PowerState.RUNNING,
    "shutdown": PowerState.SHUTDOWN,
    "guest-panicked": PowerState.CRASHED,
    "internal-error": PowerState.CRASHED,
}
"""QMP run states that are not some kind of paused; every other one is PAUSED."""


class GuestNotRunning(VirtDriverError):
    msg_fmt = "Instance %(uuid)s is not running"
    code = 409  # the guest's state, not the host, is what is wrong


def power_state_of(status: str) -> PowerState:
    return QMP_STATUS_POWER.get(status, PowerState.PAUSED)


class Guests:
    def __init__(self, processes: QemuProcesses, connect: MonitorConnector,
                 host: cmdline.HostSettings, console_log_max: int,
                 ports: PortAllocator | None = None) -> None:
        self.processes = processes
        self.connect = connect
        self.host = host
        self.console_log_max = console_log_max
        self.ports = ports or PortAllocator(10000, 20000)

    def pid(self, paths: InstancePaths) -> int | None:
        """The pid of the guest's running QEMU, or None."""
        return self.processes.find(paths.pidfile, _marker(paths))

    async def status(self, paths: InstancePaths) -> str | None:
        """QEMU's run state (running, paused, ...), or None when no QEMU runs."""
        if self.pid(paths) is None:
            return None
        try:
            async with self.connect(paths.qmp) as mon:
                result = await mon.execute("query-status")
        except MonitorUnreachable:
            if self.pid(paths) is None:  # it ended meanwhile
                return None
            raise
        return str(result["status"])

    async def execute(self, paths: InstancePaths, command: str,
                      arguments: dict[str, Any] | None = None) -> Any:
        """One QMP command to the running guest; GuestNotRunning when there is none."""
        if self.pid(paths) is None:
            raise GuestNotRunning(uuid=paths.uuid)
        async with self.connect(paths.qmp) as mon:
            return await mon.execute(command, arguments)

    # --- starting -------------------------------------------------------------

    async def start(self, paths: InstancePaths, config: GuestConfig, *,
                    state: Path | None = None, run: bool = True, accel: str | None = None
                    ) -> int:
        """Launch QEMU for config; with state, load that saved memory first.

        Returns once QMP answers and the guest runs (or sits paused when run is
        False). On any failure the QEMU is killed before the error propagates.
        """
        started = time.monotonic()
        self._trim_console_log(paths)
        host = self.host
        if accel and accel != host.accel:
            host = dataclasses.replace(host, accel=accel)
        pid = await self._launch(paths, config, host, incoming=state is not None)
        try:
            async with self.connect(paths.qmp) as mon:
                if state is not None:
                    await self._load_state(mon, paths, pid, state)
                    if run:
                        await mon.execute("cont")
                status = (await mon.execute("query-status"))["status"]
                if run and status != "running":
                    raise VirtDriverError(reason=f"QEMU started but the guest is {status}")
                await self._record_vnc(mon, paths)
        except BaseException:
            await self.force_stop(paths)
            raise
        LOG.info("Started QEMU pid %d for %s in %.2fs%s", pid, paths.uuid,
                 time.monotonic() - started, " from saved state" if state else "")
        return pid

    async def start_incoming(self, paths: InstancePaths, config: GuestConfig) -> int:
        """Launch QEMU waiting for a live migration's stream (`migrate-incoming`), which
        runs the guest as soon as its last state has arrived; its pid."""
        self._trim_console_log(paths)
        return await self._launch(paths, config, self.host, incoming=True, autostart=True)

    async def record_vnc(self, mon: Monitor, paths: InstancePaths) -> None:
        """Note where the running QEMU put the guest's VNC display (console.json)."""
        await self._record_vnc(mon, paths)

    async def _launch(self, paths: InstancePaths, config: GuestConfig,
                      host: cmdline.HostSettings, incoming: bool,
                      autostart: bool = False) -> int:
        """Start QEMU on console ports claimed for this launch; when one was taken
        between the claim and QEMU's bind (QEMU then exits at once), on other ports."""
        avoid: set[int] = set()
        attempt = 1
        while True:
            ports = await self.ports.claim(paths, host, avoid)
            argv = cmdline.build(config, paths, host, incoming=incoming, ports=ports,
                                 autostart=autostart)
            paths.qmp.unlink(missing_ok=True)
            try:
                return await self.processes.launch(argv, paths.pidfile)
            except CommandFailed as exc:
                claimed = {p for p in (ports.spice, ports.serial) if p}
                if (attempt >= PORT_ATTEMPTS or not claimed
                        or not any(clash in str(exc) for clash in PORT_CLASHES)):
                    raise
                LOG.info("A console port of %s (%s) was taken meanwhile; trying others: %s",
                         paths.uuid, sorted(claimed), exc)
                avoid |= claimed
                attempt += 1

    async def _load_state(self, mon: Monitor, paths: InstancePaths, pid: int,
                          state: Path) -> None:
        fd = os.open(state, os.O_RDONLY | os.O_CLOEXEC)
        try:
            await mon.pass_fd("incoming", fd)
        finally:
            os.close(fd)
        await mon.execute("migrate-incoming", {"uri": "fd:incoming"})
        await wait_incoming(mon, f"loading the saved state of {paths.uuid}", MIGRATION_TIMEOUT)

    async def _record_vnc(self, mon: Monitor, paths: InstancePaths) -> None:
        if not self.host.vnc_listen:
            record_vnc(paths, None)
            return
        vnc = await mon.execute("query-vnc")
        if vnc.get("enabled") and vnc.get("service"):
            record_vnc(paths, {"host": vnc.get("host"), "port": int(vnc["service"])})

    def _trim_console_log(self, paths: InstancePaths) -> None:
        """Keep at most console_log_max bytes of the serial log across restarts."""
        try:
            size = paths.console_log.stat().st_size
        except FileNotFoundError:
            return
        if size <= self.console_log_max:
            return
        with paths.console_log.open("rb") as handle:
            handle.seek(size - self.console_log_max)
            tail = handle.read()
        temp = paths.console_log.with_name(".console.log.trim")
        temp.write_bytes(tail)
        os.replace(temp, paths.console_log)

    # --- stopping -------------------------------------------------------------

    async def stop(self, paths: InstancePaths, timeout: float) -> bool:
        """Ask the guest to power off (ACPI) and wait up to timeout seconds, then force it.

        Returns whether the guest shut down by itself. timeout 0 forces at once.
        """
        pid = self.pid(paths)
        if pid is None:
            return True
        if timeout > 0 and await self._ask_power_off(paths):
            # Like Nova, ask again every ACPI_RETRY_INTERVAL: a guest still booting
            # may not have been listening to the power button the first time.
            deadline = time.monotonic() + timeout
            while True:
                wait = min(ACPI_RETRY_INTERVAL, deadline - time.monotonic())
                if await self.processes.wait_gone(pid, _marker(paths), max(wait, 0)):
                    LOG.info("Guest %s powered off by itself", paths.uuid)
                    return True
                if time.monotonic() >= deadline or not await self._ask_power_off(paths):
                    break
            if self.pid(paths) is None:
                return True
            LOG.info("Guest %s did not power off within %.0fs; stopping it", paths.uuid,
                     timeout)
        await self.force_stop(paths)
        return False

    async def _ask_power_off(self, paths: InstancePaths) -> bool:
        """Press the ACPI power button if the guest runs; whether it was pressed."""
        try:
            async with self.connect(paths.qmp) as mon:
                if (await mon.execute("query-status"))["status"] != "running":
                    return False
                await mon.execute("system_powerdown")
                return True
        except VirtDriverError as exc:
            LOG.warning("Could not ask %s to power off: %s", paths.uuid, exc)
            return False

    async def force_stop(self, paths: InstancePaths) -> None:
        """End the guest's QEMU now: `quit` (QEMU flushes its disk caches), else SIGKILL."""
        pid = self.pid(paths)
        if pid is None:
            return
        marker = _marker(paths)
        try:
            await asyncio.wait_for(self._quit(paths), QUIT_TIMEOUT)
        except (TimeoutError, VirtDriverError) as exc:
            LOG.warning("QEMU %d of %s did not quit (%s); killing it", pid, paths.uuid, exc)
        if await self.processes.wait_gone(pid, marker, QUIT_TIMEOUT):
            return
        self.processes.kill(pid, signal.SIGKILL)
        if not await self.processes.wait_gone(pid, marker, KILL_TIMEOUT):
            raise VirtDriverError(reason=f"QEMU process {pid} of {paths.uuid} survives SIGKILL")

    async def _quit(self, paths: InstancePaths) -> None:
        async with self.connect(paths.qmp) as mon:
            await mon.execute("quit")

    # --- saving -----------------------------------------------------------------

    async def save_state(self, paths: InstancePaths) -> bool:
        """Write the guest's memory and device state to paths.state, then end QEMU.

        Returns whether the guest was running (rather than paused) before. The
        state file appears only once complete.
        """
        pid = self.pid(paths)
        if pid is None:
            raise GuestNotRunning(uuid=paths.uuid)
        started = time.monotonic()
        partial = paths.state.with_name(".suspend.state.partial")
        async with self.connect(paths.qmp) as mon:
            was_running = bool((await mon.execute("query-status"))["status"] == "running")
            await mon.execute("stop")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                await mon.pass_fd("suspend", fd)
            finally:
                os.close(fd)
            try:
                await mon.execute("migrate-set-parameters", {"max-bandwidth": MAX_BANDWIDTH})
                await mon.execute("migrate", {"uri": "fd:suspend"})
                await _wait_migration(mon, paths.uuid)
            except BaseException:
                partial.unlink(missing_ok=True)
                if was_running:
                    await mon.execute("cont")
                raise
            os.replace(partial, paths.state)
            await mon.execute("quit")
        if not await self.processes.wait_gone(pid, _marker(paths), QUIT_TIMEOUT):
            await self.force_stop(paths)
        LOG.info("Saved the state of %s (%d bytes) in %.2fs", paths.uuid,
                 paths.state.stat().st_size, time.monotonic() - started)
        return was_running


async def _wait_migration(mon: Monitor, uuid: str) -> None:
    deadline = time.monotonic() + MIGRATION_TIMEOUT
    delay = 0.01
    while True:
        info = await mon.execute("query-migrate")
        status = info.get("status")
        if status == "completed":
            return
        if status in ("failed", "cancelled"):
            raise VirtDriverError(reason=f"saving the state of {uuid} {status}: "
                                         f"{info.get('error-desc', 'no detail')}")
        if time.monotonic() > deadline:
            await mon.execute("migrate_cancel")
            raise VirtDriverError(reason=f"saving the state of {uuid} took more than "
                                         f"{MIGRATION_TIMEOUT:.0f}s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)


async def wait_incoming(mon: Monitor, what: str, timeout: float,
                        accepted: tuple[str | None, ...] = (None, "completed")) -> None:
    """Wait until an incoming QEMU has its state (it leaves `inmigrate`); raise when
    that takes over `timeout` seconds or the incoming migration ended otherwise than
    `accepted` (`what`: the work, for the message)."""
    deadline = time.monotonic() + timeout
    while (await mon.execute("query-status"))["status"] == "inmigrate":
        if time.monotonic() > deadline:
            raise VirtDriverError(reason=f"{what} took more than {timeout:.0f}s")
        await asyncio.sleep(0.02)
    incoming = await mon.execute("query-migrate")
    if incoming.get("status") not in accepted:
        raise VirtDriverError(reason=f"{what} ended {incoming.get('status')}: "
                                     f"{incoming.get('error-desc', 'no detail')}")


def _marker(paths: InstancePaths) -> str:
    """What the command line of this guest's QEMU, and no other, holds: its pid file path."""
    return str(paths.pidfile)
