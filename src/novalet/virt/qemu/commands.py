"""The one door through which the QEMU driver runs host programs (qemu-img, qemu, mkfs).

Every command is logged with its duration; a failure or a timeout becomes a
VirtDriverError naming the program and quoting its error output. Unit tests
replace `CommandRunner` with a fake that records the argument lists.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass

from novalet.virt.driver import VirtDriverError

LOG = logging.getLogger(__name__)

_STDERR_QUOTE = 2000
"""Characters of a failed command's error output quoted in the exception."""


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
}


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


class CommandRunner:
    """Runs a program to completion in its own session, capturing its output."""

    async def run(self, argv: Sequence[str], *, timeout: float = 300.0,
                  check: bool = True, cwd: str | None = None) -> CommandResult:
        """Run argv; raise CommandFailed on a non-zero exit when `check`, CommandTimedOut
        (after killing the program and anything it started in its session) on a timeout.

        The program starts in a new session, so a daemon it leaves behind (qemu
        -daemonize) is not in the compute service's process group and survives it.
        """
        program = os.path.basename(argv[0])
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, start_new_session=True, close_fds=True,
                cwd=cwd)
        except FileNotFoundError:
            raise ProgramMissing(program=program,
                                 hint=PACKAGE_HINTS.get(program, "not on PATH")) from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except (TimeoutError, asyncio.CancelledError) as exc:
            _kill_session(proc.pid)
            await proc.wait()
            if isinstance(exc, asyncio.CancelledError):
                raise
            LOG.warning("Killed %s after %.1fs: %s", program, timeout, shlex.join(argv))
            raise CommandTimedOut(program=program, timeout=timeout) from None
        seconds = time.monotonic() - started
        assert proc.returncode is not None
        result = CommandResult(tuple(argv), proc.returncode,
                               out.decode(errors="replace"), err.decode(errors="replace"),
                               seconds)
        LOG.debug("Ran %s in %.3fs (exit %d)", shlex.join(argv), seconds, proc.returncode)
        if check and proc.returncode != 0:
            raise CommandFailed(program=program, returncode=proc.returncode,
                                stderr=(result.stderr.strip() or result.stdout.strip()
                                        )[-_STDERR_QUOTE:] or "no error output")
        return result


def _kill_session(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
