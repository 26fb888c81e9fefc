"""The test image's two file trees: the initramfs and the root filesystem.

Both are busybox systems laid out in a work directory by plain file
operations; the guest's scripts come from this package's data directory.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

from novalet.image.testimage.commands import Runner

DATA = importlib.resources.files("novalet.image.testimage") / "data"

DEFAULT_HOSTNAME = "novalet"

# Files of the root filesystem: guest path -> (data file, permission bits).
ROOT_FILES: dict[str, tuple[str, int]] = {
    "etc/inittab": ("inittab", 0o644),
    "etc/init.d/rcS": ("rcS", 0o755),
    "etc/init.d/rcK": ("rcK", 0o755),
    "etc/acpi/PWRF/00000080": ("power-button", 0o755),
    "usr/sbin/novalet-agent": ("novalet-agent", 0o755),
    "usr/sbin/autologin": ("autologin", 0o755),
    "usr/share/novalet/jsonget.awk": ("jsonget.awk", 0o644),
    "usr/share/novalet/udhcpc-script": ("udhcpc-script", 0o755),
}

ROOT_TEXT: dict[str, str] = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
    "etc/shadow": "root::19000:0:99999:7:::\n",
    "etc/group": "root:x:0:\ntty:x:5:\n",
    "etc/hostname": f"{DEFAULT_HOSTNAME}\n",
    "etc/hosts": f"127.0.0.1\tlocalhost\n127.0.1.1\t{DEFAULT_HOSTNAME}\n",
    "etc/profile": 'export PATH=/sbin:/bin:/usr/sbin:/usr/bin\nPS1="\\h:\\w\\$ "\n',
    "etc/os-release": 'NAME="Novalet test image"\nID=busybox\nPRETTY_NAME="Novalet tiny '
                      'test image (busybox)"\n',
    "etc/fstab": "",
}

ROOT_DIRECTORIES = ("proc", "sys", "dev", "run", "tmp", "mnt", "var/log", "var/lib/novalet",
                    "root")
INITRAMFS_DIRECTORIES = ("proc", "sys", "dev", "newroot", "run", "tmp")


def data_file(name: str) -> bytes:
    """The bytes of one of the guest's files shipped in this package."""
    return (DATA / name).read_bytes()


def busybox_applets(runner: Runner, busybox: Path) -> list[str]:
    """Where busybox wants its applet links: "bin/sh", "usr/bin/awk", ..."""
    listing = runner.run([str(busybox), "--list-full"])
    return sorted(line.strip() for line in listing.splitlines()
                  if "/" in line.strip() and not line.startswith("/"))


def _write(path: Path, data: bytes, perm: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, perm)


def install_busybox(tree: Path, busybox: Path, applets: list[str]) -> None:
    """Put busybox at /bin/busybox with a symlink for each applet."""
    _write(tree / "bin/busybox", busybox.read_bytes(), 0o755)
    for applet in applets:
        link = tree / applet
        if link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")


def write_modules_list(tree: Path, names: list[str]) -> None:
    """/etc/novalet/modules: the drivers the boot scripts load, one a line."""
    _write(tree / "etc/novalet/modules", "".join(f"{name}\n" for name in names).encode(), 0o644)


def populate_root(tree: Path, busybox: Path, applets: list[str]) -> None:
    """Lay out the root filesystem except its kernel modules."""
    for directory in ROOT_DIRECTORIES:
        (tree / directory).mkdir(parents=True, exist_ok=True)
    os.chmod(tree / "root", 0o700)
    os.chmod(tree / "tmp", 0o1777)
    install_busybox(tree, busybox, applets)
    for guest_path, (name, perm) in ROOT_FILES.items():
        _write(tree / guest_path, data_file(name), perm)
    for guest_path, text in ROOT_TEXT.items():
        _write(tree / guest_path, text.encode(), 0o600 if guest_path == "etc/shadow" else 0o644)
    (tree / "var/run").symlink_to("../run")
    (tree / "etc/resolv.conf").symlink_to("../run/resolv.conf")


def populate_initramfs(tree: Path, busybox: Path, applets: list[str]) -> None:
    """Lay out the initramfs except its kernel modules (and /dev/console: see cpio)."""
    for directory in INITRAMFS_DIRECTORIES:
        (tree / directory).mkdir(parents=True, exist_ok=True)
    install_busybox(tree, busybox, applets)
    _write(tree / "init", data_file("init"), 0o755)
