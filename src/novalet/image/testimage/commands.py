"""The one door through which the test-image builder runs host programs.

Each program the build needs is known here with the Debian package that
provides it, so a missing one fails with the package to install rather than a
bare "No such file or directory". Unit tests replace `Runner` to see the
commands without running them.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from novalet import exceptions

LOG = logging.getLogger(__name__)

TOOL_PACKAGES: dict[str, str] = {
    "apt-cache": "apt",
    "apt-get": "apt",
    "dpkg-deb": "dpkg",
    "depmod": "kmod",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "syslinux": "syslinux",
    "mke2fs": "e2fsprogs",
    "sfdisk": "fdisk",
    "qemu-img": "qemu-utils",
}
"""Every program the build runs, with the Debian package that installs it."""

HOST_FILES: dict[str, str] = {
    "/usr/lib/syslinux/mbr/mbr.bin": "syslinux-common",
}
"""Data files the build reads from the host, with the package that ships them."""


class BuildError(exceptions.NovaletError):
    msg_fmt = "Building the test image failed: %(reason)s"


class ToolMissing(BuildError):
    msg_fmt = "%(what)s missing on this host; install with: apt-get install %(packages)s"


class CommandFailed(BuildError):
    msg_fmt = "%(command)s exited with status %(status)d: %(output)s"


# Programs live in sbin directories that a non-root PATH often lacks.
_EXTRA_PATH = ("/usr/sbin", "/sbin")


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *_EXTRA_PATH]))


def find_tool(name: str) -> str:
    """The path of host program `name`, or ToolMissing naming its package."""
    found = _which(name)
    if found is None:
        raise ToolMissing(what=f"The program {name} is", packages=TOOL_PACKAGES.get(name, name))
    return found


def check_host() -> None:
    """Fail before any work is done, naming every missing program and its package."""
    missing = [tool for tool in TOOL_PACKAGES if _which(tool) is None]
    missing += [path for path in HOST_FILES if not Path(path).is_file()]
    if missing:
        wanted = {**TOOL_PACKAGES, **HOST_FILES}
        packages = " ".join(dict.fromkeys(wanted[name] for name in missing))
        raise ToolMissing(what=f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'}",
                          packages=packages)


class Runner:
    """Runs host programs, logs each with its duration, and raises on failure."""

    def run(self, argv: Sequence[str], *, cwd: Path | None = None, input: bytes | None = None,
            env: Mapping[str, str] | None = None, timeout: float = 600) -> str:
        """Run `argv` to completion and return its standard output as text."""
        command = [find_tool(argv[0]), *argv[1:]]
        full_env = None if env is None else {**os.environ, **env}
        started = time.monotonic()
        try:
            result = subprocess.run(command, cwd=cwd, input=input, env=full_env,
                                    capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise BuildError(reason=f"{argv[0]} did not finish within {timeout:.0f} s") from None
        LOG.debug("ran %s in %.2f s: status %d", " ".join(argv), time.monotonic() - started,
                  result.returncode)
        if result.returncode != 0:
            output = (result.stderr or result.stdout).decode(errors="replace").strip()
            raise CommandFailed(command=" ".join(argv), status=result.returncode,
                                output=output[-2000:] or "(no output)")
        return result.stdout.decode(errors="replace")


class ScriptedRunner(Runner):
    """A Runner that runs nothing: it records each command and answers from `handlers`.

    `handlers` maps a program name to a function taking the argv (and the
    keyword arguments run got) and returning the output or raising; programs
    without a handler print nothing. Unit tests use it in place of the host.
    """

    def __init__(self, handlers: Mapping[str, Callable[..., str]] | None = None) -> None:
        self.handlers = dict(handlers or {})
        self.commands: list[list[str]] = []

    def run(self, argv: Sequence[str], *, cwd: Path | None = None, input: bytes | None = None,
            env: Mapping[str, str] | None = None, timeout: float = 600) -> str:
        self.commands.append(list(argv))
        handler = self.handlers.get(Path(argv[0]).name)
        if handler is None:
            return ""
        return handler(list(argv), cwd=cwd, input=input, env=env)

    def programs(self) -> list[str]:
        """The program names run so far, in order."""
        return [Path(argv[0]).name for argv in self.commands]
