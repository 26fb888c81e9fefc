"""The test image's disk layout math, partition table and bootloader configuration."""

from __future__ import annotations

import pytest

from novalet.image.testimage import layout

MIB = layout.MIB


def test_default_layout_is_a_128_mib_disk_with_aligned_partitions() -> None:
    plan = layout.plan_layout(boot_content=16 * MIB, root_content=3 * MIB)

    assert plan.size == 128 * MIB
    assert plan.boot.start == 2048
    assert plan.boot.size == 32 * MIB
    assert plan.root.start == plan.boot.end == 2048 + 32 * 2048
    assert plan.root.end * layout.SECTOR == plan.size
    for partition in (plan.boot, plan.root):
        assert partition.start % layout.ALIGN_SECTORS == 0
        assert partition.sectors % layout.ALIGN_SECTORS == 0
        assert partition.offset == partition.start * 512


def test_boot_partition_grows_with_a_bigger_kernel() -> None:
    plan = layout.plan_layout(boot_content=40 * MIB, root_content=3 * MIB)

    assert plan.boot.size >= 40 * MIB * 5 // 4
    assert plan.size == 128 * MIB
    assert plan.root.start == plan.boot.end


def test_disk_grows_when_the_root_would_be_too_small() -> None:
    plan = layout.plan_layout(boot_content=16 * MIB, root_content=90 * MIB)

    assert plan.root.size >= 2 * 90 * MIB
    assert plan.size == plan.root.end * layout.SECTOR
    assert plan.size > 128 * MIB


@pytest.mark.parametrize("disk_mib", [64, 128, 1024])
def test_partitions_never_overlap_and_fill_the_disk(disk_mib: int) -> None:
    plan = layout.plan_layout(boot_content=14 * MIB, root_content=3 * MIB, disk_mib=disk_mib)

    assert 0 < plan.boot.start < plan.boot.end <= plan.root.start < plan.root.end
    assert plan.size == max(disk_mib * MIB, plan.root.end * layout.SECTOR)


def test_sfdisk_script_marks_the_fat_boot_partition_active() -> None:
    plan = layout.plan_layout(boot_content=16 * MIB, root_content=3 * MIB)

    lines = layout.sfdisk_script(plan).splitlines()

    assert lines[:3] == ["label: dos", "label-id: 0x4e4f5641", "unit: sectors"]
    assert "start=2048, size=65536, type=6, bootable" in lines
    assert "start=67584, size=194560, type=83" in lines


def test_syslinux_config_boots_at_once_with_the_serial_console_last() -> None:
    text = layout.syslinux_config("vmlinuz", "initrd.gz")

    assert "PROMPT 0" in text and "TIMEOUT 0" in text and "SERIAL 0 115200" in text
    assert "  LINUX /vmlinuz" in text
    assert "  INITRD /initrd.gz" in text
    append = next(line for line in text.splitlines() if line.strip().startswith("APPEND"))
    assert "root=LABEL=novalet-root" in append
    consoles = [word for word in append.split() if word.startswith("console=")]
    assert consoles[0] == "console=tty0"
    assert consoles[-1].startswith("console=ttyS0")


def test_direct_boot_command_line_names_the_second_virtio_partition() -> None:
    assert "root=/dev/vda2" in layout.DIRECT_BOOT_CMDLINE
    assert layout.DIRECT_BOOT_CMDLINE.split()[-1].startswith("console=ttyS0")
