"""The one door through which the QEMU driver runs host programs (qemu-img, qemu, mkfs).

Every command is logged with its duration; a failure or a timeout becomes a
VirtDriverError naming the program and quoting its error output. Unit tests
replace `CommandRunner` with a fake that records the argument lists.
"""

from __future__ import annotations

from collections.abc import Sequence

from novalet.common.processes import CommandResult, ProgramErrors, run_program
from novalet.virt.driver import VirtDriverError


class CommandFailed(VirtDriverError):
    msg_fmt = "%(program)s failed (exit status %(returncode)s): %(stderr)s"


class CommandTimedOut(VirtDriverError):
    msg_fmt = "%(program)s did not finish within %(timeout)s seconds and was killed"


class ProgramMissing(VirtDriverError):
    msg_fmt = "%(program)s is not installed on this host (%(hint)s)"


PACKAGE_HINTS: dict[str, str] = {
    "qemu-img": "apt-get install qemu-utils",
    "qemu-system-x86_64": "apt-get install qemu-system-x86",
    "mkfs.ext4": "apt-get install e2fsprogs",
    "mkfs.vfat": "apt-get install dosfstools",
    "mkswap": "apt-get install util-linux",
    "qemu-storage-daemon": "apt-get install qemu-system-common",
}


_ERRORS = ProgramErrors(failed=CommandFailed, timed_out=CommandTimedOut,
                        missing=ProgramMissing, hints=PACKAGE_HINTS)


class CommandRunner:
    """Runs a program to completion in its own session, capturing its output."""

    async def run(self, argv: Sequence[str], *, timeout: float = 300.0,
                  check: bool = True, cwd: str | None = None) -> CommandResult:
        """Run argv; raise CommandFailed on a non-zero exit when `check`, CommandTimedOut
        (after killing the program and anything it started in its session) on a timeout.

        The program starts in a new session, so a daemon it leaves behind (qemu
        -daemonize) is not in the compute service's process group and survives it.
        """
        return await run_program(argv, _ERRORS, timeout=timeout, check=check, cwd=cwd)
