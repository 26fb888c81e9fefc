"""Choosing the kernel modules of the test image from depmod's index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from novalet.image.testimage import modules
from novalet.image.testimage.commands import BuildError, ScriptedRunner

RELEASE = "6.1.0-56-cloud-amd64"

# An excerpt of what depmod writes for Debian's cloud kernel.
MODULES_DEP = """\
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko \
kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko \
kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/scsi/scsi_common.ko:
kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/drivers/cdrom/cdrom.ko:
kernel/drivers/scsi/sr_mod.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko \
kernel/drivers/cdrom/cdrom.ko
kernel/fs/isofs/isofs.ko: kernel/drivers/cdrom/cdrom.ko
kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko
kernel/drivers/acpi/button.ko:
kernel/sound/unrelated.ko:
""".replace("\\\n", "")

MODULES_BUILTIN = "kernel/fs/ext4/ext4.ko\nkernel/fs/jbd2/jbd2.ko\n"


@pytest.fixture
def index() -> modules.ModuleIndex:
    return modules.ModuleIndex.parse(MODULES_DEP, MODULES_BUILTIN)


@pytest.mark.parametrize("path, name", [
    ("kernel/drivers/virtio/virtio_pci.ko", "virtio_pci"),
    ("kernel/drivers/char/hw_random/virtio-rng.ko", "virtio_rng"),
    ("kernel/drivers/ata/ata_piix.ko.xz", "ata_piix"),
    ("/lib/modules/x/kernel/fs/isofs/isofs.ko.zst", "isofs"),
])
def test_module_names_come_from_file_names(path: str, name: str) -> None:
    assert modules.module_name(path) == name


def test_closure_holds_the_wanted_modules_and_their_dependencies(
        index: modules.ModuleIndex) -> None:
    files = index.closure(("virtio_pci", "sr_mod"))

    assert files == sorted([
        "kernel/drivers/virtio/virtio_pci.ko", "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
        "kernel/drivers/virtio/virtio_pci_modern_dev.ko", "kernel/drivers/virtio/virtio.ko",
        "kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/scsi/sr_mod.ko",
        "kernel/drivers/scsi/scsi_mod.ko", "kernel/drivers/scsi/scsi_common.ko",
        "kernel/drivers/cdrom/cdrom.ko"])


def test_built_in_modules_are_skipped_and_not_loaded(index: modules.ModuleIndex) -> None:
    assert index.closure(("ext4", "isofs")) == [
        "kernel/drivers/cdrom/cdrom.ko", "kernel/fs/isofs/isofs.ko"]
    assert index.loadable(("virtio_blk", "ext4", "isofs")) == ["virtio_blk", "isofs"]


def test_dashed_module_files_answer_to_underscored_names(index: modules.ModuleIndex) -> None:
    assert index.closure(("virtio_rng",)) == [
        "kernel/drivers/char/hw_random/virtio-rng.ko", "kernel/drivers/virtio/virtio.ko"]


def test_a_module_the_kernel_lacks_is_an_error(index: modules.ModuleIndex) -> None:
    with pytest.raises(BuildError, match="no module ahci"):
        index.closure(("virtio_blk", "ahci"))


def test_drivers_cover_every_bus_the_image_supports() -> None:
    for needed in ("virtio_pci", "virtio_blk", "virtio_net", "ata_piix", "sr_mod", "isofs",
                   "button", "evdev"):
        assert needed in modules.DRIVERS
    assert modules.DRIVERS.index("virtio_pci") < modules.DRIVERS.index("virtio_blk")


def _kernel_tree(root: Path) -> Path:
    source = root / "lib/modules" / RELEASE
    for line in MODULES_DEP.splitlines():
        path = source / line.partition(":")[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x7fELF " + path.name.encode())
    (source / "modules.builtin").write_text(MODULES_BUILTIN)
    return source


def _fake_depmod(argv: list[str], **_: Any) -> str:
    base, release = Path(argv[2]), argv[3]
    (base / "lib/modules" / release / "modules.dep").write_text(MODULES_DEP)
    return ""


def test_index_runs_depmod_on_the_unpacked_package(tmp_path: Path) -> None:
    _kernel_tree(tmp_path)
    runner = ScriptedRunner({"depmod": _fake_depmod})

    index = modules.index_kernel(runner, tmp_path, RELEASE)

    assert runner.commands == [["depmod", "-b", str(tmp_path), RELEASE]]
    assert "ext4" in index.builtin and "virtio_blk" in index.files


def test_install_copies_only_the_chosen_modules_and_indexes_them(tmp_path: Path) -> None:
    _kernel_tree(tmp_path / "kernel")
    runner = ScriptedRunner()
    chosen = ["kernel/fs/isofs/isofs.ko", "kernel/drivers/cdrom/cdrom.ko"]

    modules.install_modules(runner, tmp_path / "kernel", RELEASE, chosen, tmp_path / "guest")

    target = tmp_path / "guest/lib/modules" / RELEASE
    copied = sorted(p.relative_to(target).as_posix() for p in target.rglob("*.ko"))
    assert copied == sorted(chosen)
    assert (target / "modules.builtin").read_text() == MODULES_BUILTIN
    assert runner.commands == [["depmod", "-b", str(tmp_path / "guest"), RELEASE]]


def test_a_merged_usr_kernel_package_is_found_too(tmp_path: Path) -> None:
    (tmp_path / "usr/lib/modules" / RELEASE).mkdir(parents=True)
    assert modules.modules_root(tmp_path, RELEASE) == tmp_path / "usr/lib/modules" / RELEASE
    with pytest.raises(BuildError, match="no modules directory"):
        modules.modules_root(tmp_path, "6.1.0-1-cloud-amd64")
