"""The test image's disk layout and the boot configuration written onto it.

An MBR disk (syslinux's mbr.bin boots the active partition) with two
partitions aligned to 1 MiB: a FAT16 boot partition holding syslinux, the
kernel and the initramfs, and an ext4 root filesystem filling the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

SECTOR = 512
MIB = 1024 * 1024
ALIGN_SECTORS = MIB // SECTOR

DEFAULT_DISK_MIB = 128
"""Virtual size of the disk; like CirrOS's 112 MiB, it fits the smallest flavor."""

MIN_BOOT_MIB = 32
ROOT_LABEL = "novalet-root"
BOOT_LABEL = "NOVALETBOOT"
DISK_ID = 0x4E4F5641  # "NOVA": a fixed MBR disk identifier keeps builds comparable.

FAT16_TYPE = "6"
LINUX_TYPE = "83"

KERNEL_CMDLINE = f"root=LABEL={ROOT_LABEL} console=tty0 console=ttyS0,115200n8"
"""The kernel line syslinux passes; the serial console comes last so it is /dev/console."""

DIRECT_BOOT_CMDLINE = "root=/dev/vda2 console=tty0 console=ttyS0,115200n8"
"""A kernel line for booting the kernel and initramfs directly (no bootloader)."""


def _mib_ceil(size: int) -> int:
    return -(-size // MIB)


@dataclass(frozen=True)
class Partition:
    """A run of sectors on the disk."""

    start: int
    sectors: int

    @property
    def offset(self) -> int:
        """Byte offset on the disk."""
        return self.start * SECTOR

    @property
    def size(self) -> int:
        """Size in bytes."""
        return self.sectors * SECTOR

    @property
    def end(self) -> int:
        """First sector after the partition."""
        return self.start + self.sectors


@dataclass(frozen=True)
class DiskLayout:
    size: int
    boot: Partition
    root: Partition


def plan_layout(boot_content: int, root_content: int,
                disk_mib: int = DEFAULT_DISK_MIB) -> DiskLayout:
    """A layout whose boot partition holds `boot_content` bytes and root `root_content`.

    The boot partition gets a quarter again as much as its files for FAT and
    syslinux overhead (never under 32 MiB); the root takes the rest of a
    `disk_mib` disk, which grows when the root would otherwise have less than
    twice its content (ext4's journal and tables, and room to write).
    """
    boot_mib = max(MIN_BOOT_MIB, _mib_ceil(boot_content * 5 // 4 + MIB))
    root_start_mib = 1 + boot_mib
    root_mib = max(disk_mib - root_start_mib, _mib_ceil(2 * root_content) + 16)
    boot = Partition(ALIGN_SECTORS, boot_mib * ALIGN_SECTORS)
    root = Partition(boot.end, root_mib * ALIGN_SECTORS)
    return DiskLayout(size=root.end * SECTOR, boot=boot, root=root)


def sfdisk_script(layout: DiskLayout) -> str:
    """Input for sfdisk: an MBR table with the active FAT16 boot and the Linux root."""
    return "\n".join([
        "label: dos",
        f"label-id: 0x{DISK_ID:08x}",
        "unit: sectors",
        "",
        f"start={layout.boot.start}, size={layout.boot.sectors}, type={FAT16_TYPE}, bootable",
        f"start={layout.root.start}, size={layout.root.sectors}, type={LINUX_TYPE}",
        "",
    ])


def syslinux_config(kernel: str, initrd: str, cmdline: str = KERNEL_CMDLINE) -> str:
    """syslinux.cfg booting `kernel` with `initrd` at once, echoing to the serial port."""
    return "\n".join([
        "SERIAL 0 115200",
        "DEFAULT novalet",
        "PROMPT 0",
        "TIMEOUT 0",
        "LABEL novalet",
        f"  LINUX /{kernel}",
        f"  INITRD /{initrd}",
        f"  APPEND {cmdline}",
        "",
    ])
