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

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from novalet.common.processes import CommandResult, ProgramErrors, run_program
from novalet.network.linux.errors import LinuxNetError

LOG = logging.getLogger(__name__)

NETNS_DIR = Path("/run/netns")
"""Where `ip netns` (and pyroute2) keep the handles of named network namespaces."""


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


_ERRORS = ProgramErrors(failed=CommandFailed, timed_out=CommandTimedOut,
                        missing=ProgramMissing, hints=PACKAGE_HINTS)


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
        full = self.wrap(argv)
        try:
            return await run_program(full, _ERRORS, timeout=timeout, check=check,
                                     input=input)
        except CommandFailed as exc:
            if exc.kwargs.get("returncode") == 127 and \
                    "failed to execute" in exc.kwargs.get("stderr", ""):
                # nsenter could not find the program it was to exec
                program = os.path.basename(argv[0])
                raise ProgramMissing(program=program,
                                     hint=PACKAGE_HINTS.get(program, "not on PATH")) from None
            raise

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
