"""Making the test image's filesystems and disk without mounting anything.

The FAT boot partition is made with mkfs.vfat, filled with mtools and made
bootable with `syslinux --install`, all on an unmounted image file; the root
is an ext4 filesystem made from a directory by `mke2fs -d`. Both are copied
into a sparse raw disk behind sfdisk's partition table and syslinux's MBR
boot code, which qemu-img then compresses into qcow2.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from novalet.image.testimage import layout
from novalet.image.testimage.commands import BuildError, Runner

MBR_BOOT_CODE = Path("/usr/lib/syslinux/mbr/mbr.bin")
MBR_CODE_SIZE = 440  # the boot code area, before the disk id and the partition table
_COPY_CHUNK = 1024 * 1024
_VOLUME_ID = "4e4f5641"
# mtools refuses images whose FAT geometry looks unusual unless told not to check.
_MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1"}


def make_boot_filesystem(runner: Runner, image: Path, partition: layout.Partition,
                         files: Mapping[str, Path], syslinux_cfg: str) -> None:
    """A FAT16 filesystem image for `partition` with syslinux and `files` at its top."""
    image.unlink(missing_ok=True)
    runner.run(["mkfs.vfat", "-F", "16", "-n", layout.BOOT_LABEL, "-i", _VOLUME_ID,
                "-h", str(partition.start), "-C", str(image), str(partition.size // 1024)])
    runner.run(["syslinux", "--install", str(image)])
    config = image.with_name("syslinux.cfg")
    config.write_text(syslinux_cfg)
    for name, source in {**files, "syslinux.cfg": config}.items():
        runner.run(["mcopy", "-i", str(image), str(source), f"::/{name}"], env=_MTOOLS_ENV)


def make_root_filesystem(runner: Runner, image: Path, size: int, tree: Path) -> None:
    """An ext4 filesystem image of `size` bytes holding `tree`, with 4 KiB blocks."""
    image.unlink(missing_ok=True)
    with image.open("wb") as handle:
        handle.truncate(size)
    runner.run(["mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-L", layout.ROOT_LABEL,
                "-E", "root_owner=0:0", "-d", str(tree), str(image)])


def _copy_into(disk: Path, source: Path, offset: int, limit: int) -> None:
    """Copy `source` into `disk` at `offset`, skipping zero chunks to keep the disk sparse."""
    if source.stat().st_size > limit:
        raise BuildError(reason=f"{source.name} is larger than its partition")
    zero = bytes(_COPY_CHUNK)
    with source.open("rb") as reader, disk.open("r+b") as writer:
        position = offset
        while chunk := reader.read(_COPY_CHUNK):
            if chunk != zero[:len(chunk)]:
                writer.seek(position)
                writer.write(chunk)
            position += len(chunk)


def assemble_disk(runner: Runner, disk: Path, plan: layout.DiskLayout, boot_image: Path,
                  root_image: Path) -> None:
    """A raw disk with the partition table, the MBR boot code and both filesystems."""
    disk.unlink(missing_ok=True)
    with disk.open("wb") as handle:
        handle.truncate(plan.size)
    runner.run(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", str(disk)],
               input=layout.sfdisk_script(plan).encode())
    boot_code = MBR_BOOT_CODE.read_bytes()[:MBR_CODE_SIZE]
    with disk.open("r+b") as handle:
        handle.write(boot_code)
    _copy_into(disk, boot_image, plan.boot.offset, plan.boot.size)
    _copy_into(disk, root_image, plan.root.offset, plan.root.size)


def convert_to_qcow2(runner: Runner, raw: Path, qcow2: Path) -> None:
    """A compressed qcow2 copy of the raw disk."""
    qcow2.unlink(missing_ok=True)
    runner.run(["qemu-img", "convert", "-q", "-c", "-f", "raw", "-O", "qcow2", str(raw),
                str(qcow2)])
