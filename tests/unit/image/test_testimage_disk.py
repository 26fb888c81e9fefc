"""The commands that make the test image's filesystems, and the raw disk assembly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from novalet.image.testimage import disk, layout
from novalet.image.testimage.commands import BuildError, ScriptedRunner

MIB = layout.MIB


def _creates_file(argv: list[str], **_: Any) -> str:
    """mkfs.vfat -C IMAGE KIB: make the file as the real program would."""
    image = Path(argv[argv.index("-C") + 1])
    image.write_bytes(b"")
    return ""


def test_boot_filesystem_is_fat16_with_hidden_sectors_and_syslinux(tmp_path: Path) -> None:
    plan = layout.plan_layout(16 * MIB, 3 * MIB)
    runner = ScriptedRunner({"mkfs.vfat": _creates_file})
    kernel, initrd = tmp_path / "vmlinuz", tmp_path / "initrd"
    image = tmp_path / "boot.img"

    disk.make_boot_filesystem(runner, image, plan.boot, {"vmlinuz": kernel, "initrd.gz": initrd},
                              "DEFAULT novalet\n")

    assert runner.commands[0] == ["mkfs.vfat", "-F", "16", "-n", "NOVALETBOOT", "-i", "4e4f5641",
                                  "-h", "2048", "-C", str(image), str(32 * 1024)]
    assert runner.commands[1] == ["syslinux", "--install", str(image)]
    copies = runner.commands[2:]
    assert [argv[:3] for argv in copies] == [["mcopy", "-i", str(image)]] * 3
    assert [(argv[3], argv[4]) for argv in copies] == [
        (str(kernel), "::/vmlinuz"), (str(initrd), "::/initrd.gz"),
        (str(tmp_path / "syslinux.cfg"), "::/syslinux.cfg")]
    assert (tmp_path / "syslinux.cfg").read_text() == "DEFAULT novalet\n"


def test_root_filesystem_is_ext4_with_4k_blocks_made_from_the_tree(tmp_path: Path) -> None:
    runner = ScriptedRunner()
    image = tmp_path / "root.img"

    disk.make_root_filesystem(runner, image, 95 * MIB, tmp_path / "tree")

    assert image.stat().st_size == 95 * MIB
    assert runner.commands == [["mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-L",
                                "novalet-root", "-E", "root_owner=0:0", "-d",
                                str(tmp_path / "tree"), str(image)]]


def test_assembled_disk_has_the_table_boot_code_and_both_filesystems(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mbr = tmp_path / "mbr.bin"
    mbr.write_bytes(b"\xfa" * 440 + b"\x00" * 72)
    monkeypatch.setattr(disk, "MBR_BOOT_CODE", mbr)
    plan = layout.plan_layout(16 * MIB, 3 * MIB)
    boot, root = tmp_path / "boot.img", tmp_path / "root.img"
    boot.write_bytes(b"B" * 4096 + bytes(2 * MIB) + b"b" * 512)
    root.write_bytes(b"R" * 1024)
    seen_input: list[bytes] = []

    def sfdisk(argv: list[str], input: bytes, **_: Any) -> str:
        seen_input.append(input)
        return ""

    runner = ScriptedRunner({"sfdisk": sfdisk})
    raw = tmp_path / "disk.raw"
    disk.assemble_disk(runner, raw, plan, boot, root)

    assert runner.commands == [["sfdisk", "-q", "--no-reread", "--no-tell-kernel", str(raw)]]
    assert seen_input == [layout.sfdisk_script(plan).encode()]
    data = raw.read_bytes()
    assert len(data) == plan.size
    assert data[:440] == b"\xfa" * 440
    assert data[plan.boot.offset:plan.boot.offset + 4096] == b"B" * 4096
    end_of_boot = plan.boot.offset + 4096 + 2 * MIB
    assert data[end_of_boot:end_of_boot + 512] == b"b" * 512
    assert data[plan.root.offset:plan.root.offset + 1024] == b"R" * 1024
    # Zero chunks are skipped, not written: the raw disk stays sparse.
    assert raw.stat().st_blocks * 512 < 4 * MIB


def test_a_filesystem_bigger_than_its_partition_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mbr = tmp_path / "mbr.bin"
    mbr.write_bytes(bytes(512))
    monkeypatch.setattr(disk, "MBR_BOOT_CODE", mbr)
    plan = layout.plan_layout(16 * MIB, 3 * MIB)
    boot = tmp_path / "boot.img"
    with boot.open("wb") as handle:
        handle.truncate(plan.boot.size + 1)

    with pytest.raises(BuildError, match="boot.img is larger than its partition"):
        disk.assemble_disk(ScriptedRunner(), tmp_path / "disk.raw", plan, boot, boot)


def test_qcow2_is_compressed(tmp_path: Path) -> None:
    runner = ScriptedRunner()
    disk.convert_to_qcow2(runner, tmp_path / "disk.raw", tmp_path / "out.qcow2")

    assert runner.commands == [["qemu-img", "convert", "-q", "-c", "-f", "raw", "-O", "qcow2",
                                str(tmp_path / "disk.raw"), str(tmp_path / "out.qcow2")]]
