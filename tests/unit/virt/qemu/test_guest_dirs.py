"""The one prologue of spawn and both incoming moves (guest_dirs.new_guest_dir)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from novalet.virt.driver import VirtDriverError
from novalet.virt.qemu.guest_dirs import new_guest_dir
from novalet.virt.qemu.layout import InstancePaths

UUID = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"


async def test_the_directory_is_private_and_spawning_until_the_caller_says_otherwise(
        tmp_path: Path) -> None:
    paths = InstancePaths(tmp_path / "instances", UUID)
    removed: list[InstancePaths] = []

    async def remove(p: InstancePaths) -> None:
        removed.append(p)

    async with new_guest_dir(paths, remove, "Spawning"):
        assert stat.S_IMODE(paths.dir.stat().st_mode) == 0o700
        assert paths.spawning.exists()
    assert paths.spawning.exists() and removed == []
    with pytest.raises(VirtDriverError, match="already exists on this host"):
        async with new_guest_dir(paths, remove, "Spawning"):
            pass
    assert removed == []  # someone else's directory is never removed


async def test_a_failure_in_the_block_removes_what_it_made(tmp_path: Path) -> None:
    paths = InstancePaths(tmp_path, UUID)
    removed: list[InstancePaths] = []

    async def remove(p: InstancePaths) -> None:
        removed.append(p)

    with pytest.raises(OSError, match="disk full"):
        async with new_guest_dir(paths, remove, "Preparing to take"):
            raise OSError("disk full")
    assert removed == [paths]
