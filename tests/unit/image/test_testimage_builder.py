"""The test-image build as a whole, over a faked host, and what it tells the image service."""

from __future__ import annotations

import gzip
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from novalet.image import testimage
from novalet.image.testimage import builder, commands, disk, modules, trees
from novalet.image.testimage.commands import ScriptedRunner
from tests.unit.image.test_testimage_cpio import read_newc

RELEASE = "6.1.0-56-cloud-amd64"
KERNEL_PACKAGE = f"linux-image-{RELEASE}"
MODULE_FILES = {
    "virtio_pci": "kernel/drivers/virtio/virtio_pci.ko",
    "virtio": "kernel/drivers/virtio/virtio.ko",
    "virtio_blk": "kernel/drivers/block/virtio_blk.ko",
    "virtio_scsi": "kernel/drivers/scsi/virtio_scsi.ko",
    "scsi_mod": "kernel/drivers/scsi/scsi_mod.ko",
    "ata_piix": "kernel/drivers/ata/ata_piix.ko",
    "libata": "kernel/drivers/ata/libata.ko",
    "sd_mod": "kernel/drivers/scsi/sd_mod.ko",
    "sr_mod": "kernel/drivers/scsi/sr_mod.ko",
    "cdrom": "kernel/drivers/cdrom/cdrom.ko",
    "isofs": "kernel/fs/isofs/isofs.ko",
    "virtio_net": "kernel/drivers/net/virtio_net.ko",
    "button": "kernel/drivers/acpi/button.ko",
    "evdev": "kernel/drivers/input/evdev.ko",
    "snd": "kernel/sound/snd.ko",
}
DEPENDS = {"virtio_pci": ["virtio"], "virtio_blk": ["virtio"], "virtio_net": ["virtio"],
           "virtio_scsi": ["scsi_mod", "virtio"], "ata_piix": ["libata", "scsi_mod"],
           "sd_mod": ["scsi_mod"], "sr_mod": ["scsi_mod", "cdrom"], "isofs": ["cdrom"]}


class FakeHost:
    """Answers for every program the build runs, doing what each would to the files."""

    def __init__(self, tmp_path: Path) -> None:
        self.downloads = 0
        self.runner = ScriptedRunner({
            "apt-cache": self.apt_cache, "apt-get": self.apt_get, "dpkg-deb": self.dpkg_deb,
            "depmod": self.depmod, "busybox": self.busybox, "mkfs.vfat": self.mkfs_vfat,
            "qemu-img": self.qemu_img})

    def apt_cache(self, argv: list[str], **_: Any) -> str:
        name = argv[-1].split(":")[0]
        if name == "linux-image-cloud-amd64":
            return f"Package: {name}\nVersion: 6.1.192-2\nDepends: {KERNEL_PACKAGE} (= 6.1.192-2)\n"
        return f"Package: {name}\nVersion: 1:2.0-1\nArchitecture: amd64\n"

    def apt_get(self, argv: list[str], cwd: Path, **_: Any) -> str:
        name, _sep, version = argv[-1].partition("=")
        package = name.split(":")[0]
        (cwd / f"{package}_{version.replace(':', '%3a')}_amd64.deb").write_text(package)
        self.downloads += 1
        return ""

    def dpkg_deb(self, argv: list[str], **_: Any) -> str:
        deb, destination = Path(argv[2]), Path(argv[3])
        if deb.read_text() == KERNEL_PACKAGE:
            (destination / "boot").mkdir(parents=True)
            (destination / "boot" / f"vmlinuz-{RELEASE}").write_bytes(b"MZ kernel")
            for path in MODULE_FILES.values():
                module = destination / "lib/modules" / RELEASE / path
                module.parent.mkdir(parents=True, exist_ok=True)
                module.write_bytes(b"\x7fELF")
            (destination / "lib/modules" / RELEASE / "modules.builtin").write_text(
                "kernel/fs/ext4/ext4.ko\n")
        else:
            (destination / "bin").mkdir(parents=True)
            (destination / "bin/busybox").write_bytes(b"\x7fELF busybox")
        return ""

    def depmod(self, argv: list[str], **_: Any) -> str:
        target = Path(argv[2]) / "lib/modules" / argv[3]
        lines = [f"{path}: " + " ".join(MODULE_FILES[dep] for dep in DEPENDS.get(name, []))
                 for name, path in MODULE_FILES.items() if (target / path).exists()]
        (target / "modules.dep").write_text("\n".join(lines) + "\n")
        return ""

    def busybox(self, argv: list[str], **_: Any) -> str:
        assert argv[1:] == ["--list-full"]
        return "bin/sh\nsbin/init\nsbin/acpid\nusr/bin/awk\nlinuxrc\n"

    def mkfs_vfat(self, argv: list[str], **_: Any) -> str:
        Path(argv[argv.index("-C") + 1]).write_bytes(b"FAT")
        return ""

    def qemu_img(self, argv: list[str], **_: Any) -> str:
        Path(argv[-1]).write_bytes(b"QFI\xfb")
        return ""


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    mbr = tmp_path / "mbr.bin"
    mbr.write_bytes(bytes(440))
    monkeypatch.setattr(disk, "MBR_BOOT_CODE", mbr)
    monkeypatch.setattr(builder, "check_host", lambda: None)
    return FakeHost(tmp_path)


def test_build_writes_the_qcow2_kernel_and_initramfs(host: FakeHost, tmp_path: Path) -> None:
    output = tmp_path / "images/novalet-tiny.qcow2"
    lines: list[str] = []

    assert testimage.build_test_image(output, lines.append, runner=host.runner) == output

    assert output.read_bytes() == b"QFI\xfb"
    assert (tmp_path / "images/novalet-tiny.vmlinuz").read_bytes() == b"MZ kernel"
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == [
        ".novalet-tiny.qcow2.lock", "novalet-tiny.initrd", "novalet-tiny.qcow2",
        "novalet-tiny.vmlinuz", "testimage-cache"]
    assert host.runner.programs() == [
        "apt-cache", "apt-cache", "apt-cache", "apt-get", "dpkg-deb", "apt-get", "dpkg-deb",
        "depmod", "busybox", "depmod", "depmod", "mkfs.vfat", "syslinux", "mcopy", "mcopy",
        "mcopy", "mke2fs", "sfdisk", "qemu-img"]
    assert len(lines) == 10
    assert all(re.match(r"\[ *\d+\.\ds\] [A-Z].* in \d+\.\ds$", line) for line in lines)


def test_the_initramfs_holds_init_busybox_drivers_and_a_console(host: FakeHost,
                                                                 tmp_path: Path) -> None:
    output = tmp_path / "novalet-tiny.qcow2"
    testimage.build_test_image(output, lambda line: None, runner=host.runner)

    members = {m.name: m for m in read_newc(gzip.decompress(testimage.ramdisk_path(output)
                                                            .read_bytes()))}
    assert members["init"].mode == stat.S_IFREG | 0o755
    assert members["init"].data.startswith(b"#!/bin/busybox sh\n")
    assert members["sbin/init"].data == b"/bin/busybox"
    assert "linuxrc" not in members
    assert stat.S_ISCHR(members["dev/console"].mode)
    assert {"proc", "sys", "dev", "newroot"} <= members.keys()
    loaded = members["etc/novalet/modules"].data.decode().split()
    assert loaded == [name for name in modules.DRIVERS if name != "ext4"]
    module_dir = f"lib/modules/{RELEASE}/"
    shipped = {name[len(module_dir):] for name in members
               if name.startswith(module_dir) and name.endswith(".ko")}
    assert shipped == {path for name, path in MODULE_FILES.items() if name != "snd"}
    assert f"{module_dir}modules.dep" in members


def test_a_rebuild_reuses_the_downloads_and_an_existing_image_is_kept(
        host: FakeHost, tmp_path: Path) -> None:
    output = tmp_path / "novalet-tiny.qcow2"
    testimage.build_test_image(output, lambda line: None, runner=host.runner)
    testimage.build_test_image(output, lambda line: None, runner=host.runner, force=True)
    assert host.downloads == 2

    runs = len(host.runner.commands)
    lines: list[str] = []
    testimage.build_test_image(output, lines.append, runner=host.runner)
    assert len(host.runner.commands) == runs
    assert lines == [f"{output} exists; --force rebuilds it"]


def test_a_failed_build_keeps_the_old_image_and_cleans_up(host: FakeHost, tmp_path: Path) -> None:
    output = tmp_path / "novalet-tiny.qcow2"
    testimage.build_test_image(output, lambda line: None, runner=host.runner)

    def broken(argv: list[str], **_: Any) -> str:
        raise commands.CommandFailed(command="mke2fs", status=1, output="no space")

    host.runner.handlers["mke2fs"] = broken
    with pytest.raises(commands.BuildError, match="no space"):
        testimage.build_test_image(output, lambda line: None, runner=host.runner, force=True)
    assert output.read_bytes() == b"QFI\xfb"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".novalet-tiny-build-")]


def test_the_root_tree_is_a_busybox_system_with_the_agent(tmp_path: Path) -> None:
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF")
    tree = tmp_path / "root"

    trees.populate_root(tree, busybox, ["bin/sh", "sbin/init", "sbin/acpid", "usr/bin/awk"])

    assert (tree / "sbin/init").readlink() == Path("/bin/busybox")
    assert (tree / "etc/resolv.conf").readlink() == Path("../run/resolv.conf")
    for guest_path, (_, perm) in trees.ROOT_FILES.items():
        assert stat.S_IMODE((tree / guest_path).stat().st_mode) == perm, guest_path
    assert stat.S_IMODE((tree / "etc/shadow").stat().st_mode) == 0o600
    assert stat.S_IMODE((tree / "tmp").stat().st_mode) == 0o1777
    assert (tree / "etc/hostname").read_text() == "novalet\n"
    assert "::sysinit:/etc/init.d/rcS" in (tree / "etc/inittab").read_text()


def test_guest_scripts_are_shell_scripts_with_the_documented_markers() -> None:
    for name in ("init", "rcS", "rcK", "novalet-agent", "power-button", "autologin",
                 "udhcpc-script"):
        assert trees.data_file(name).startswith(b"#!/"), name
    agent = trees.data_file("novalet-agent").decode()
    assert 'announce "NOVALET-GUEST-READY uuid=$uuid hostname=$(hostname)"' in agent
    assert "NOVALET-GUEST-MEMORY mem_kb=" in agent
    assert "NOVALET-GUEST-UPTIME seconds=" in agent
    assert "timeout 10 wget" in agent and "wget -T" not in agent
    assert b"exec /sbin/poweroff" in trees.data_file("power-button")


@pytest.mark.skipif(shutil.which("sh") is None, reason="no sh on this host")
@pytest.mark.parametrize("name", ["init", "rcS", "rcK", "novalet-agent", "power-button",
                                  "autologin", "udhcpc-script"])
def test_guest_scripts_parse(name: str, tmp_path: Path) -> None:
    script = tmp_path / name
    script.write_bytes(trees.data_file(name))
    result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True,
                            timeout=10, check=False)
    assert result.returncode == 0, result.stderr


def test_image_properties_name_what_the_guest_kernel_can_drive() -> None:
    properties = testimage.image_properties()

    assert properties["hw_disk_bus"] == "virtio"
    assert properties["hw_vif_model"] == "virtio"
    assert properties["hw_cdrom_bus"] == "ide"
    assert properties["os_distro"] == "busybox"


def test_uploads_are_the_kernel_ramdisk_and_disk_beside_the_output(tmp_path: Path) -> None:
    output = tmp_path / "novalet-tiny.qcow2"

    kernel, ramdisk, image = testimage.uploads(output)

    assert (kernel.path, kernel.disk_format, kernel.container_format) == (
        tmp_path / "novalet-tiny.vmlinuz", "aki", "aki")
    assert (ramdisk.path, ramdisk.disk_format, ramdisk.container_format) == (
        tmp_path / "novalet-tiny.initrd", "ari", "ari")
    assert (image.name, image.path, image.disk_format, image.container_format) == (
        "novalet-tiny", output, "qcow2", "bare")
    assert image.properties == testimage.image_properties()
    assert image.min_ram == 96


def test_direct_boot_properties_point_at_the_kernel_and_the_second_partition() -> None:
    properties = testimage.direct_boot_properties("k-id", "r-id")

    assert properties["kernel_id"] == "k-id" and properties["ramdisk_id"] == "r-id"
    assert "root=/dev/vda2" in properties["os_command_line"]


def test_default_output_is_under_the_state_dir(tmp_path: Path) -> None:
    assert testimage.default_output(tmp_path) == tmp_path / "images/novalet-tiny.qcow2"


def test_recipe_digest_is_stable() -> None:
    assert re.fullmatch(r"[0-9a-f]{16}", builder.recipe_digest())
    assert builder.recipe_digest() == builder.recipe_digest()
