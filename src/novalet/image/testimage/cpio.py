"""A writer for the cpio "newc" format the Linux kernel unpacks as an initramfs.

Written here rather than run through cpio(1) so the archive owns its files as
root and holds a /dev/console node without the build running as root, and so
the same tree always gives the same bytes (inode numbers and times fixed).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"070701"
TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    """One archive member: `name` is relative ("bin/sh"), `mode` includes the type bits."""

    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)

    @classmethod
    def directory(cls, name: str, perm: int = 0o755) -> Entry:
        return cls(name, stat.S_IFDIR | perm)

    @classmethod
    def file(cls, name: str, data: bytes, perm: int = 0o644) -> Entry:
        return cls(name, stat.S_IFREG | perm, data)

    @classmethod
    def symlink(cls, name: str, target: str) -> Entry:
        return cls(name, stat.S_IFLNK | 0o777, target.encode())

    @classmethod
    def char_device(cls, name: str, major: int, minor: int, perm: int = 0o600) -> Entry:
        return cls(name, stat.S_IFCHR | perm, rdev=(major, minor))


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _header(ino: int, entry: Entry, name: bytes) -> bytes:
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = (ino, entry.mode, 0, 0, nlink, 0, len(entry.data), 0, 0,
              entry.rdev[0], entry.rdev[1], len(name), 0)
    return MAGIC + b"".join(b"%08X" % value for value in fields)


def newc_archive(entries: Iterable[Entry]) -> bytes:
    """The archive of `entries` in the given order, owned by root, dated 1970, with its trailer."""
    parts: list[bytes] = []
    members = [*entries, Entry(TRAILER, 0)]
    for ino, entry in enumerate(members, start=1):
        name = entry.name.encode() + b"\0"
        header = _header(0 if entry.name == TRAILER else ino, entry, name)
        parts += [header, name, _pad(len(header) + len(name)), entry.data, _pad(len(entry.data))]
    return b"".join(parts)


def tree_entries(root: Path) -> list[Entry]:
    """Entries for every directory, file and symlink under `root`, parents first, sorted.

    Permission bits come from the files; owners and times do not (see newc_archive).
    """
    entries: list[Entry] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        here = Path(dirpath)
        for name in sorted(dirnames + filenames):
            path = here / name
            relative = path.relative_to(root).as_posix()
            info = path.lstat()
            perm = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                entries.append(Entry.symlink(relative, os.readlink(path)))
            elif stat.S_ISDIR(info.st_mode):
                entries.append(Entry.directory(relative, perm))
            elif stat.S_ISREG(info.st_mode):
                entries.append(Entry.file(relative, path.read_bytes(), perm))
            else:
                raise ValueError(f"{path} is neither a file, a directory nor a symlink")
    return entries
