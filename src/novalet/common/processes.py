"""Running a host program to completion: the mechanism behind each subsystem's one door.

Each subsystem (the QEMU driver, host networking) keeps its own door module,
with its own error classes and package hints, and runs programs through
`run_program`: in a new session (so a daemon it leaves behind is not in the
service's process group), output captured, logged with its duration, killed
with everything in its session on a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from novalet.exceptions import NovaletError

LOG = logging.getLogger(__name__)

STDERR_QUOTE = 2000
"""Characters of a failed command's error output quoted in the exception."""


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


@dataclass(frozen=True)
class ProgramErrors:
    """The errors a subsystem raises, each built from the keyword arguments shown."""

    failed: type[NovaletError]     # program, returncode, stderr
    timed_out: type[NovaletError]  # program, timeout
    missing: type[NovaletError]    # program, hint
    hints: Mapping[str, str]       # program -> how to install it


async def run_program(argv: Sequence[str], errors: ProgramErrors, *, timeout: float,
                      check: bool = True, cwd: str | None = None,
                      input: str | None = None) -> CommandResult:
    """Run argv to completion; errors.failed on a non-zero exit when `check`,
    errors.timed_out (after killing its session) past `timeout`, errors.missing
    when the program isn't installed."""
    program = os.path.basename(argv[0])
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if input is not None
            else asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True, close_fds=True,
            cwd=cwd)
    except FileNotFoundError:
        raise errors.missing(program=program,
                             hint=errors.hints.get(program, "not on PATH")) from None
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(input.encode() if input is not None else None), timeout)
    except (TimeoutError, asyncio.CancelledError) as exc:
        kill_session(proc.pid)
        await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        LOG.warning("Killed %s after %.1fs: %s", program, timeout, shlex.join(argv))
        raise errors.timed_out(program=program, timeout=timeout) from None
    seconds = time.monotonic() - started
    assert proc.returncode is not None
    result = CommandResult(tuple(argv), proc.returncode, out.decode(errors="replace"),
                           err.decode(errors="replace"), seconds)
    LOG.debug("Ran %s in %.3fs (exit %d)", shlex.join(argv), seconds, proc.returncode)
    if check and proc.returncode != 0:
        raise errors.failed(program=program, returncode=proc.returncode,
                            stderr=(result.stderr.strip() or result.stdout.strip()
                                    )[-STDERR_QUOTE:] or "no error output")
    return result


def kill_session(pid: int) -> None:
    """SIGKILL every process of the session `pid` leads; gone already is fine."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
