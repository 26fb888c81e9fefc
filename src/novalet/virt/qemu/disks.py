"""Disk files through qemu-img (and mkfs for blank filesystems): one module, one door.

Every call names the format of each image it touches; nothing here lets
qemu-img guess.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from novalet.virt.driver import VirtDriverError
from novalet.virt.qemu.commands import CommandRunner

LOG = logging.getLogger(__name__)

QEMU_IMG = "qemu-img"
GiB = 1024 ** 3
MiB = 1024 ** 2

INFO_TIMEOUT = 30.0
CREATE_TIMEOUT = 60.0
CONVERT_TIMEOUT = 3600.0


@dataclass(frozen=True)
class DiskInfo:
    format: str
    virtual_size: int
    actual_size: int
    backing_file: str | None
    backing_format: str | None
    data_file: str | None

    @classmethod
    def from_qemu_img(cls, data: dict[str, Any]) -> DiskInfo:
        specific = (data.get("format-specific") or {}).get("data") or {}
        return cls(format=data["format"], virtual_size=int(data["virtual-size"]),
                   actual_size=int(data.get("actual-size", 0)),
                   backing_file=data.get("backing-filename"),
                   backing_format=data.get("backing-filename-format"),
                   data_file=specific.get("data-file"))


class Disks:
    """Creates, inspects, grows, converts and formats disk image files."""

    def __init__(self, runner: CommandRunner) -> None:
        self.runner = runner

    async def info(self, path: Path, fmt: str, *, in_use: bool = False) -> DiskInfo:
        """qemu-img info of one image (never its backing chain); in_use: a guest has it open."""
        argv = [QEMU_IMG, "info", "--output=json", "-f", fmt]
        if in_use:
            argv.append("--force-share")
        result = await self.runner.run([*argv, str(path)], timeout=INFO_TIMEOUT)
        try:
            return DiskInfo.from_qemu_img(json.loads(result.stdout))
        except (ValueError, KeyError, TypeError) as exc:
            raise VirtDriverError(reason=f"qemu-img info of {path} is unreadable: {exc}") from None

    async def create_overlay(self, path: Path, backing: Path, backing_format: str,
                             size: int | None = None) -> None:
        """A qcow2 file whose unwritten blocks read from `backing`; grown to size if given."""
        argv = [QEMU_IMG, "create", "-q", "-f", "qcow2", "-F", backing_format,
                "-b", str(backing.resolve()), str(path)]
        if size is not None:
            argv.append(str(size))
        await self.runner.run(argv, timeout=CREATE_TIMEOUT)

    async def create_blank(self, path: Path, fmt: str, size: int) -> None:
        await self.runner.run([QEMU_IMG, "create", "-q", "-f", fmt, str(path), str(size)],
                              timeout=CREATE_TIMEOUT)

    async def resize(self, path: Path, fmt: str, size: int) -> None:
        """Grow an image to size bytes (qemu-img refuses to shrink without --shrink)."""
        await self.runner.run([QEMU_IMG, "resize", "-q", "-f", fmt, str(path), str(size)],
                              timeout=CREATE_TIMEOUT)

    async def convert(self, source: Path, source_format: str, dest: Path, dest_format: str,
                      *, in_use: bool = False) -> None:
        """Write a standalone copy of source (its backing chain flattened) to dest."""
        argv = [QEMU_IMG, "convert", "-q", "-f", source_format, "-O", dest_format]
        if in_use:
            argv.append("-U")
        await self.runner.run([*argv, str(source), str(dest)], timeout=CONVERT_TIMEOUT)

    async def make_filesystem(self, path: Path, fs: str, label: str) -> bool:
        """Put an empty filesystem on a raw file; False when the host lacks the tool."""
        if fs == "swap":
            argv = ["mkswap", "-L", label, str(path)]
        elif fs == "ext4":
            argv = ["mkfs.ext4", "-q", "-F", "-L", label,
                    "-E", "lazy_itable_init=1,lazy_journal_init=1", str(path)]
        elif fs == "vfat":
            argv = ["mkfs.vfat", "-n", label.upper()[:11], str(path)]
        else:
            raise VirtDriverError(reason=f"unknown filesystem {fs!r}")
        if shutil.which(argv[0]) is None:
            LOG.warning("%s is not installed: %s stays unformatted", argv[0], path.name)
            return False
        await self.runner.run(argv, timeout=CREATE_TIMEOUT)
        return True
