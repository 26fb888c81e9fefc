"""The one door through which host networking runs programs (nft, dnsmasq, modprobe)
and signals the daemons it started.

Every command is logged with its duration; a failure or a timeout becomes a
LinuxNetError naming the program and quoting its error output. When the driver
works inside a named network namespace, every program is started there through
`nsenter --net=/run/netns/<name>` (which execs the program in place, so /proc
shows the program's own command line). Unit tests replace `CommandRunner` with
a fake that records argument lists and plays the daemons.
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
from pathlib import Path

from novalet.network.linux.errors import LinuxNetError

LOG = logging.getLogger(__name__)

NETNS_DIR = Path("/run/netns")
"""Where `ip netns` (and pyroute2) keep the handles of named network namespaces."""

_STDERR_QUOTE = 2000
"""Characters of a failed command's error output quoted in the exception."""


class CommandFailed(LinuxNetError):
    msg_fmt = "%(program)s failed (exit status %(returncode)s): %(stderr)s"


class CommandTimedOut(LinuxNetError):
    msg_fmt = "%(program)s did not finish within %(timeout)s seconds and was killed"


class ProgramMissing(LinuxNetError):
    msg_fmt = "%(program)s is not installed on this host (%(hint)s)"


PACKAGE_HINTS: dict[str, str] = {
    "nft": "apt-get install nftables",
    "dnsmasq": "apt-get install dnsmasq-base",
    "nsenter": "apt-get install util-linux",
    "modprobe": "apt-get install kmod",
}


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


class CommandRunner:
    """Runs programs to completion (in `netns` when given) and signals processes by pid."""

    def __init__(self, netns: str | None = None, proc_root: Path = Path("/proc")) -> None:
        self.netns = netns
        self.proc_root = proc_root

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """The argument list that actually runs argv: argv itself, or argv under nsenter."""
        if self.netns is None:
            return list(argv)
        return ["nsenter", f"--net={NETNS_DIR / self.netns}", "--", *argv]

    async def run(self, argv: Sequence[str], *, input: str | None = None,
                  timeout: float = 30.0, check: bool = True) -> CommandResult:
        """Run argv with `input` on its stdin; raise CommandFailed on a non-zero exit when
        `check`, CommandTimedOut (after killing it) when it outlives `timeout`.

        The program starts in a new session, so a daemon it leaves behind
        (dnsmasq) is not in the network service's process group.
        """
        program = os.path.basename(argv[0])
        full = self.wrap(argv)
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *full, stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                start_new_session=True, close_fds=True)
        except FileNotFoundError:
            missing = os.path.basename(full[0])
            raise ProgramMissing(program=missing,
                                 hint=PACKAGE_HINTS.get(missing, "not on PATH")) from None
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(input.encode() if input is not None else None), timeout)
        except (TimeoutError, asyncio.CancelledError) as exc:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await proc.wait()
            if isinstance(exc, asyncio.CancelledError):
                raise
            LOG.warning("Killed %s after %.1fs: %s", program, timeout, shlex.join(full))
            raise CommandTimedOut(program=program, timeout=timeout) from None
        seconds = time.monotonic() - started
        assert proc.returncode is not None
        result = CommandResult(tuple(full), proc.returncode, out.decode(errors="replace"),
                               err.decode(errors="replace"), seconds)
        LOG.debug("Ran %s in %.3fs (exit %d)", shlex.join(full), seconds, proc.returncode)
        if check and proc.returncode != 0:
            if proc.returncode == 127 and "failed to execute" in result.stderr:
                # nsenter could not find the program it was to exec
                raise ProgramMissing(program=program,
                                     hint=PACKAGE_HINTS.get(program, "not on PATH"))
            raise CommandFailed(program=program, returncode=proc.returncode,
                                stderr=(result.stderr.strip() or result.stdout.strip()
                                        )[-_STDERR_QUOTE:] or "no error output")
        return result

    def signal(self, pid: int, sig: int) -> bool:
        """Send sig to pid; False when there is no such process."""
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return False
        LOG.debug("Sent signal %d to pid %d", sig, pid)
        return True

    def cmdline(self, pid: int) -> list[str] | None:
        """The command line of a live process, or None when pid is gone or a zombie."""
        try:
            stat = (self.proc_root / str(pid) / "stat").read_text()
            raw = (self.proc_root / str(pid) / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        # the state letter follows the parenthesised command name, which may hold spaces
        if stat[stat.rfind(")") + 2:stat.rfind(")") + 3] in ("Z", "X") or not raw:
            return None
        return [part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")]
