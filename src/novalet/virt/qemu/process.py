"""Launching, finding and killing the detached QEMU process of each guest.

QEMU runs daemonized (`-daemonize`, its own session, cwd /), so it is nobody's
child here and outlives the compute service. A guest's process is found again
from its pid file, and only counts as found when /proc shows a live process
whose command line holds a marker unique to the guest (the path of its own
pid file): a stale pid file whose number was reused by another program is
never mistaken for the guest.

QEMU starts in the instance directory and binds its QMP socket there by a
relative name: a unix socket path may not exceed 107 bytes, and instance
directories can be deeper than that (QEMU moves to / only once set up).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

from novalet.virt.driver import VirtDriverError
from novalet.virt.qemu.commands import CommandRunner

LOG = logging.getLogger(__name__)

LAUNCH_TIMEOUT = 60.0
"""Seconds QEMU may take to set itself up before it daemonizes."""


class QemuProcesses:
    """Starts and controls detached QEMU processes through the command door and /proc."""

    def __init__(self, runner: CommandRunner, proc_root: Path = Path("/proc")) -> None:
        self.runner = runner
        self.proc_root = proc_root

    async def launch(self, argv: Sequence[str], pidfile: Path) -> int:
        """Start QEMU detached in pidfile's directory; return its pid once it has daemonized.

        QEMU's first process exits only when the daemon is set up (disks open,
        sockets listening), reporting any setup error on stderr, which the command
        door turns into CommandFailed.
        """
        pidfile.unlink(missing_ok=True)
        await self.runner.run([*argv, "-daemonize", "-pidfile", str(pidfile)],
                              timeout=LAUNCH_TIMEOUT, cwd=str(pidfile.parent))
        pid = read_pidfile(pidfile)
        if pid is None:
            raise VirtDriverError(reason=f"QEMU daemonized but left no pid in {pidfile}")
        return pid

    def find(self, pidfile: Path, marker: str) -> int | None:
        """The pid of the live QEMU recorded in pidfile whose command line holds marker."""
        pid = read_pidfile(pidfile)
        if pid is None or not self.is_alive(pid, marker):
            return None
        return pid

    def is_alive(self, pid: int, marker: str) -> bool:
        proc = self.proc_root / str(pid)
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return False
        # The state letter follows the parenthesised command name; Z: a zombie
        # nobody reaped (there may be no real init in a container).
        state = stat.rpartition(")")[2].split()[:1]
        if state == ["Z"] or state == ["X"]:
            return False
        return marker.encode() in cmdline

    def kill(self, pid: int, sig: int = signal.SIGKILL) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    async def wait_gone(self, pid: int, marker: str, timeout: float) -> bool:
        """Wait up to timeout seconds for the process to end; whether it did.

        Ended means gone from /proc or a zombie: an exiting QEMU drops its memory
        (and with it /proc/<pid>/cmdline, where the marker is) before it closes its
        files, so a process that lost its marker may still hold its display and
        QMP sockets. Once identified by the marker, the process is followed by its
        start time (a pid reused meanwhile is another process)."""
        if not self.is_alive(pid, marker):
            return True
        started = self._start_time(pid)
        deadline = time.monotonic() + timeout
        delay = 0.01
        while self._running(pid, started):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)
        return True

    def _stat_fields(self, pid: int) -> list[str] | None:
        """/proc/<pid>/stat after the parenthesised name (state first), or None."""
        try:
            stat = (self.proc_root / str(pid) / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        return stat.rpartition(")")[2].split()

    def _start_time(self, pid: int) -> str | None:
        fields = self._stat_fields(pid)
        return fields[19] if fields is not None and len(fields) > 19 else None

    def _running(self, pid: int, started: str | None) -> bool:
        fields = self._stat_fields(pid)
        if not fields or fields[0] in ("Z", "X"):
            return False
        return started is None or (len(fields) > 19 and fields[19] == started)


def read_pidfile(pidfile: Path) -> int | None:
    try:
        text = pidfile.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None
