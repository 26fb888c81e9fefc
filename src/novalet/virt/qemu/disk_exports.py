"""NBD exports of an incoming guest's disks: one detached qemu-storage-daemon per guest.

A cold move's destination makes the guest's disks and serves them, writable, on
one NBD port (one export per disk, named by its drive id); the source writes its
disks into them with qemu-img. The daemon runs detached (its own session), so
it survives a compute service restart, and is found again by its pid file in
the instance directory, as a guest's QEMU is (process.py): only a live process
whose command line names that pid file counts.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Sequence
from pathlib import Path

from novalet.virt.driver import VirtDriverError
from novalet.virt.qemu.commands import CommandRunner
from novalet.virt.qemu.layout import InstancePaths
from novalet.virt.qemu.process import QemuProcesses

LOG = logging.getLogger(__name__)

QSD = "qemu-storage-daemon"
PIDFILE = "nbd.pid"
LAUNCH_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
"""Seconds the daemon may take to flush and close its disks after SIGTERM."""


def _opt(value: str | Path) -> str:
    """A value inside a QEMU option string: commas doubled."""
    return str(value).replace(",", ",,")


def export_argv(disks: Sequence[tuple[str, Path]], address: str, port: int,
                pidfile: Path) -> list[str]:
    """The daemon's command line: each (drive id, qcow2 file) exported writable as
    the drive id, on address:port."""
    argv = [QSD]
    for drive, path in disks:
        argv += ["--blockdev", f"driver=file,filename={_opt(path)},node-name=file-{drive}",
                 "--blockdev", f"driver=qcow2,file=file-{drive},node-name={drive}"]
    argv += ["--nbd-server", f"addr.type=inet,addr.host={_opt(address)},addr.port={port}"]
    for drive, _ in disks:
        argv += ["--export",
                 f"type=nbd,id=export-{drive},node-name={drive},name={drive},writable=on"]
    return [*argv, "--daemonize", "--pidfile", str(pidfile)]


class DiskExports:
    """Starts, finds and stops the NBD server of an incoming guest's disks."""

    def __init__(self, runner: CommandRunner, processes: QemuProcesses) -> None:
        self.runner = runner
        self.processes = processes

    @staticmethod
    def pidfile(paths: InstancePaths) -> Path:
        return paths.dir / PIDFILE

    async def start(self, paths: InstancePaths, disks: Sequence[tuple[str, Path]],
                    address: str, port: int) -> int:
        """Serve `disks` on address:port; the daemon's pid once it listens (its first
        process exits only then, with any setup error on stderr)."""
        pidfile = self.pidfile(paths)
        pidfile.unlink(missing_ok=True)
        await self.runner.run(export_argv(disks, address, port, pidfile),
                              timeout=LAUNCH_TIMEOUT, cwd=str(paths.dir))
        pid = self.pid(paths)
        if pid is None:
            raise VirtDriverError(reason=f"{QSD} for {paths.uuid} daemonized but does not "
                                         f"run (no live process in {pidfile})")
        return pid

    def pid(self, paths: InstancePaths) -> int | None:
        pidfile = self.pidfile(paths)
        return self.processes.find(pidfile, str(pidfile))

    async def stop(self, paths: InstancePaths) -> None:
        """End the daemon (SIGTERM: it flushes and closes its disks; SIGKILL if it
        doesn't); nothing running is fine."""
        pidfile = self.pidfile(paths)
        pid = self.pid(paths)
        if pid is not None:
            self.processes.kill(pid, signal.SIGTERM)
            if not await self.processes.wait_gone(pid, str(pidfile), STOP_TIMEOUT):
                LOG.warning("%s %d of %s ignored SIGTERM; killing it", QSD, pid, paths.uuid)
                self.processes.kill(pid, signal.SIGKILL)
                if not await self.processes.wait_gone(pid, str(pidfile), STOP_TIMEOUT):
                    raise VirtDriverError(reason=f"{QSD} {pid} of {paths.uuid} survives "
                                                 "SIGKILL")
        pidfile.unlink(missing_ok=True)
