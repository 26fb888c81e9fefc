"""The newc cpio writer the initramfs is made with, read back by a reader written here."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest

from novalet.image.testimage import cpio


@dataclass
class Member:
    name: str
    ino: int
    mode: int
    uid: int
    gid: int
    mtime: int
    rdev: tuple[int, int]
    data: bytes


def read_newc(archive: bytes) -> list[Member]:
    """Members of a newc archive up to its trailer, checking the 4-byte alignment."""
    members: list[Member] = []
    pos = 0
    while True:
        assert archive[pos:pos + 6] == b"070701"
        fields = [int(archive[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = fields[11], fields[6]
        name_start = pos + 110
        name = archive[name_start:name_start + namesize]
        assert name.endswith(b"\0")
        data_start = name_start + namesize
        data_start += -data_start % 4
        data = archive[data_start:data_start + filesize]
        pos = data_start + filesize
        pos += -pos % 4
        member = Member(name[:-1].decode(), fields[0], fields[1], fields[2], fields[3],
                        fields[5], (fields[9], fields[10]), data)
        if member.name == "TRAILER!!!":
            assert pos == len(archive)
            return members
        members.append(member)


def test_entries_round_trip_with_root_owner_and_fixed_times() -> None:
    archive = cpio.newc_archive([
        cpio.Entry.directory("bin"),
        cpio.Entry.file("bin/busybox", b"\x7fELF" + bytes(range(7)), 0o755),
        cpio.Entry.symlink("bin/sh", "/bin/busybox"),
        cpio.Entry.char_device("dev/console", 5, 1),
        cpio.Entry.file("empty", b""),
    ])

    members = read_newc(archive)

    assert [m.name for m in members] == ["bin", "bin/busybox", "bin/sh", "dev/console", "empty"]
    by_name = {m.name: m for m in members}
    assert stat.S_ISDIR(by_name["bin"].mode)
    assert by_name["bin/busybox"].mode == stat.S_IFREG | 0o755
    assert by_name["bin/busybox"].data == b"\x7fELF" + bytes(range(7))
    assert stat.S_ISLNK(by_name["bin/sh"].mode) and by_name["bin/sh"].data == b"/bin/busybox"
    assert stat.S_ISCHR(by_name["dev/console"].mode) and by_name["dev/console"].rdev == (5, 1)
    assert all(m.uid == 0 and m.gid == 0 and m.mtime == 0 for m in members)
    assert len({m.ino for m in members}) == len(members)


@pytest.mark.parametrize("name_length", range(1, 9))
def test_every_name_and_data_length_keeps_the_alignment(name_length: int) -> None:
    entries = [cpio.Entry.file(f"{size}" + "n" * name_length, b"x" * size) for size in range(6)]
    assert [m.data for m in read_newc(cpio.newc_archive(entries))] == [
        b"x" * size for size in range(6)]


def test_same_tree_gives_the_same_bytes(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/inittab").write_text("::sysinit:/etc/init.d/rcS\n")
    first = cpio.newc_archive(cpio.tree_entries(tmp_path))
    os.utime(tmp_path / "etc/inittab", (0, 12345))

    assert cpio.newc_archive(cpio.tree_entries(tmp_path)) == first


def test_tree_entries_list_parents_first_with_their_permissions(tmp_path: Path) -> None:
    (tmp_path / "sbin").mkdir()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/busybox").write_bytes(b"bb")
    (tmp_path / "bin/busybox").chmod(0o755)
    (tmp_path / "sbin/init").symlink_to("/bin/busybox")
    (tmp_path / "init").write_text("#!/bin/busybox sh\n")
    (tmp_path / "init").chmod(0o700)
    (tmp_path / "lib/modules/6.1.0-1-cloud-amd64").mkdir(parents=True)

    entries = cpio.tree_entries(tmp_path)

    names = [entry.name for entry in entries]
    assert names == ["bin", "init", "lib", "sbin", "bin/busybox", "lib/modules",
                     "lib/modules/6.1.0-1-cloud-amd64", "sbin/init"]
    by_name = {entry.name: entry for entry in entries}
    assert by_name["init"].mode == stat.S_IFREG | 0o700
    assert by_name["bin/busybox"].mode == stat.S_IFREG | 0o755
    assert by_name["sbin/init"].data == b"/bin/busybox"
    for name in names:
        parent = name.rpartition("/")[0]
        assert not parent or names.index(parent) < names.index(name)


def test_tree_entries_refuse_special_files(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ValueError, match="fifo"):
        cpio.tree_entries(tmp_path)


def test_an_empty_tree_gives_just_the_trailer(tmp_path: Path) -> None:
    assert read_newc(cpio.newc_archive(cpio.tree_entries(tmp_path))) == []
