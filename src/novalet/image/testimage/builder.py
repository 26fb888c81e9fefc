"""Builds the tiny bootable test image (a CirrOS-like busybox guest) from Debian packages.

The steps: resolve and download the cloud kernel and busybox-static (cached
next to the output), unpack them, pick the kernel modules a QEMU guest needs,
lay out the initramfs and the root filesystem, make the FAT boot and ext4 root
filesystems, assemble the disk and compress it to qcow2. Nothing is mounted
and nothing needs root. The kernel and initramfs are also written next to the
qcow2 for direct kernel boot.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import importlib.resources
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from novalet.image.testimage import cpio, disk, layout, modules, packages, trees
from novalet.image.testimage.commands import Runner, check_host

Progress = Callable[[str], None]

IMAGE_NAME = "novalet-tiny"
KERNEL_SUFFIX = ".vmlinuz"
RAMDISK_SUFFIX = ".initrd"
CACHE_DIRECTORY = "testimage-cache"
MIN_RAM_MB = 96
"""Measured: 80 MiB boots, 64 MiB does not (the kernel fails to load)."""


def default_output(state_path: Path) -> Path:
    """Where the image goes in a cloud's state directory."""
    return state_path / "images" / f"{IMAGE_NAME}.qcow2"


def kernel_path(output: Path) -> Path:
    """The kernel written beside the qcow2 (novalet-tiny.vmlinuz)."""
    return output.with_suffix(KERNEL_SUFFIX)


def ramdisk_path(output: Path) -> Path:
    """The initramfs written beside the qcow2 (novalet-tiny.initrd)."""
    return output.with_suffix(RAMDISK_SUFFIX)


def outputs_exist(output: Path) -> bool:
    return all(path.is_file() for path in (output, kernel_path(output), ramdisk_path(output)))


def image_properties() -> dict[str, str]:
    """Glance properties of the qcow2: what the guest's kernel can drive.

    The kernel has no AHCI (SATA) or e1000 driver, so disks stay virtio (or
    ide/scsi), CD-ROMs (the config drive) IDE, and the NIC virtio.
    """
    return {
        "hw_disk_bus": "virtio",
        "hw_cdrom_bus": "ide",
        "hw_vif_model": "virtio",
        "os_type": "linux",
        "os_distro": "busybox",
        "architecture": "x86_64",
    }


def direct_boot_properties(kernel_id: str, ramdisk_id: str) -> dict[str, str]:
    """Properties for an image booting the uploaded kernel and initramfs directly."""
    return {**image_properties(), "kernel_id": kernel_id, "ramdisk_id": ramdisk_id,
            "os_command_line": layout.DIRECT_BOOT_CMDLINE}


@dataclass(frozen=True)
class ImageUpload:
    """One file to upload to the image service, with how to describe it."""

    name: str
    path: Path
    disk_format: str
    container_format: str
    properties: dict[str, str] = field(default_factory=dict)
    min_ram: int = 0
    min_disk: int = 0


def uploads(output: Path) -> list[ImageUpload]:
    """The kernel (aki), the initramfs (ari) and the disk (qcow2) of a built image."""
    return [
        ImageUpload(f"{IMAGE_NAME}-kernel", kernel_path(output), "aki", "aki"),
        ImageUpload(f"{IMAGE_NAME}-ramdisk", ramdisk_path(output), "ari", "ari"),
        ImageUpload(IMAGE_NAME, output, "qcow2", "bare", image_properties(), min_ram=MIN_RAM_MB),
    ]


def recipe_digest() -> str:
    """A digest of this package's code and guest files: it changes when a build would.

    Package versions are not in it (apt decides those at build time).
    """
    digest = hashlib.sha256()
    package = importlib.resources.files("novalet.image.testimage")
    for directory in (package, package / "data"):
        for item in sorted(directory.iterdir(), key=lambda entry: entry.name):
            if item.is_file() and not item.name.endswith((".pyc", ".pyo")):
                digest.update(f"{directory.name}/{item.name}\0".encode())
                digest.update(item.read_bytes())
    return digest.hexdigest()[:16]


class _Steps:
    """Prints one line per finished step with its duration and the time since the start."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.started = time.monotonic()

    @contextmanager
    def step(self, what: str) -> Iterator[list[str]]:
        """Time the block; words appended to the yielded list follow `what` on the line."""
        began = time.monotonic()
        notes: list[str] = []
        yield notes
        now = time.monotonic()
        detail = f" ({', '.join(notes)})" if notes else ""
        self.progress(f"[{now - self.started:5.1f}s] {what}{detail} in {now - began:.1f}s")


@contextmanager
def _locked(output: Path) -> Iterator[None]:
    """Hold an exclusive lock on the output so concurrent builds take turns."""
    lock_path = output.with_name(f".{output.name}.lock")
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_test_image(output: Path, progress: Progress = print, *, force: bool = False,
                     cache_dir: Path | None = None, runner: Runner | None = None) -> Path:
    """Build the test image at `output` (qcow2) with its .vmlinuz and .initrd beside it.

    Returns `output`. When all three files exist the build is skipped unless
    `force`. Downloaded packages are kept in `cache_dir` (default: a
    testimage-cache directory beside the output). Raises BuildError (or its
    ToolMissing, naming the Debian package to install) on failure, leaving
    any earlier image in place.
    """
    output = output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    with _locked(output):
        if outputs_exist(output) and not force:
            progress(f"{output} exists; --force rebuilds it")
            return output
        check_host()
        work = Path(tempfile.mkdtemp(prefix=f".{IMAGE_NAME}-build-", dir=output.parent))
        try:
            _build(output, work, cache_dir or output.parent / CACHE_DIRECTORY,
                   runner or Runner(), _Steps(progress))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return output


def _build(output: Path, work: Path, cache_dir: Path, runner: Runner, steps: _Steps) -> None:
    cache = packages.PackageCache(runner, cache_dir)
    with steps.step("Resolved packages") as notes:
        kernel_deb, busybox_deb = cache.kernel(), cache.busybox()
        notes += [f"{kernel_deb.name} {kernel_deb.version}",
                  f"{busybox_deb.name} {busybox_deb.version}"]
    unpacked = {}
    for package in (kernel_deb, busybox_deb):
        with steps.step(f"Fetched and unpacked {package.name}") as notes:
            path, cached = cache.fetch(package)
            notes.append("cached" if cached else "downloaded")
            unpacked[package.name] = work / package.name
            cache.unpack(path, unpacked[package.name])
    release = packages.kernel_release(kernel_deb.name)
    kernel_tree = unpacked[kernel_deb.name]
    busybox = unpacked[busybox_deb.name] / "bin/busybox"

    with steps.step("Selected kernel modules") as notes:
        index = modules.index_kernel(runner, kernel_tree, release)
        module_files = index.closure(modules.DRIVERS)
        to_load = index.loadable(modules.DRIVERS)
        notes.append(f"{len(module_files)} modules")

    with steps.step("Built the initramfs") as notes:
        applets = trees.busybox_applets(runner, busybox)
        initramfs_tree = work / "initramfs"
        trees.populate_initramfs(initramfs_tree, busybox, applets)
        trees.write_modules_list(initramfs_tree, to_load)
        modules.install_modules(runner, kernel_tree, release, module_files, initramfs_tree)
        entries = [cpio.Entry.char_device("dev/console", 5, 1),
                   *cpio.tree_entries(initramfs_tree)]
        initrd = work / f"{IMAGE_NAME}{RAMDISK_SUFFIX}"
        initrd.write_bytes(gzip.compress(cpio.newc_archive(entries), compresslevel=9, mtime=0))
        notes.append(f"{initrd.stat().st_size // 1024} KiB")

    with steps.step("Laid out the root filesystem"):
        root_tree = work / "root"
        trees.populate_root(root_tree, busybox, applets)
        trees.write_modules_list(root_tree, to_load)
        modules.install_modules(runner, kernel_tree, release, module_files, root_tree)

    vmlinuz = work / f"{IMAGE_NAME}{KERNEL_SUFFIX}"
    shutil.copyfile(kernel_tree / "boot" / f"vmlinuz-{release}", vmlinuz)
    plan = layout.plan_layout(vmlinuz.stat().st_size + initrd.stat().st_size,
                              _tree_size(root_tree))
    with steps.step("Made the boot filesystem (FAT16, syslinux)"):
        boot_image = work / "boot.img"
        disk.make_boot_filesystem(
            runner, boot_image, plan.boot, {"vmlinuz": vmlinuz, "initrd.gz": initrd},
            layout.syslinux_config("vmlinuz", "initrd.gz"))
    with steps.step("Made the root filesystem (ext4)"):
        root_image = work / "root.img"
        disk.make_root_filesystem(runner, root_image, plan.root.size, root_tree)
    with steps.step("Assembled the disk") as notes:
        raw = work / "disk.raw"
        disk.assemble_disk(runner, raw, plan, boot_image, root_image)
        notes.append(f"{plan.size // layout.MIB} MiB")
    with steps.step("Compressed it to qcow2") as notes:
        qcow2 = work / output.name
        disk.convert_to_qcow2(runner, raw, qcow2)
        notes.append(f"{qcow2.stat().st_size / layout.MIB:.1f} MiB")

    # The qcow2 goes last: its presence means the other two are there.
    vmlinuz.replace(kernel_path(output))
    initrd.replace(ramdisk_path(output))
    qcow2.replace(output)


def _tree_size(tree: Path) -> int:
    return sum(path.lstat().st_size for path in tree.rglob("*"))
