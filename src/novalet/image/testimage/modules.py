"""The kernel modules the test image loads, and their dependencies.

The cloud kernel builds the drivers a QEMU guest needs as modules and its
package ships no modules.dep: the builder runs `depmod -b` on the unpacked
package, reads the dependencies from here, and copies only the closure of
`DRIVERS` into the guest, where `depmod -b` runs again for busybox modprobe.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from novalet.image.testimage.commands import BuildError, Runner

DRIVERS: tuple[str, ...] = (
    "virtio_pci",   # the PCI transport every virtio device below sits on
    "virtio_blk",   # hw_disk_bus=virtio: /dev/vda
    "virtio_scsi",  # hw_disk_bus=scsi with a virtio-scsi controller: /dev/sda
    "ata_piix",     # hw_disk_bus=ide and IDE CD-ROMs (the config drive): /dev/sda, /dev/sr0
    "sd_mod",       # SCSI and ATA disks
    "sr_mod",       # SCSI and ATA CD-ROMs
    "isofs",        # the config drive's ISO9660 filesystem
    "ext4",         # the root filesystem (built in, in Debian's cloud kernel)
    "virtio_net",   # the NIC: the cloud kernel has no e1000
    "button",       # ACPI power button events ...
    "evdev",        # ... which busybox acpid reads from /dev/input/event*
)
"""Loaded in this order at boot; modprobe pulls in each one's dependencies."""

# Support files depmod and modprobe read besides the modules themselves.
_SUPPORT_FILES = ("modules.builtin", "modules.builtin.modinfo", "modules.order")


def module_name(path: str) -> str:
    """A module's name from its file path: kernel/drivers/ata/pata-foo.ko.xz -> pata_foo."""
    base = path.rsplit("/", 1)[-1]
    return base.split(".ko", 1)[0].replace("-", "_")


@dataclass(frozen=True)
class ModuleIndex:
    """What depmod found: each loadable module's file and its dependencies' files."""

    files: dict[str, str]
    depends: dict[str, list[str]]
    builtin: frozenset[str]

    @classmethod
    def parse(cls, modules_dep: str, modules_builtin: str = "") -> ModuleIndex:
        files: dict[str, str] = {}
        depends: dict[str, list[str]] = {}
        for line in modules_dep.splitlines():
            if ":" not in line:
                continue
            path, _, deps = line.partition(":")
            name = module_name(path.strip())
            files[name] = path.strip()
            depends[name] = [module_name(dep) for dep in deps.split()]
        builtin = frozenset(module_name(line.strip()) for line in modules_builtin.splitlines()
                            if line.strip())
        return cls(files, depends, builtin)

    def closure(self, wanted: tuple[str, ...]) -> list[str]:
        """Files of the loadable modules among `wanted` and of all they depend on.

        Built-in modules are skipped; a module the kernel has neither way is an error.
        """
        seen: dict[str, None] = {}
        pending = list(wanted)
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            if name not in self.files:
                if name in self.builtin:
                    continue
                raise BuildError(reason=f"the kernel has no module {name}, loadable or built in")
            seen[name] = None
            pending.extend(self.depends[name])
        return sorted(self.files[name] for name in seen)

    def loadable(self, wanted: tuple[str, ...]) -> list[str]:
        """The names among `wanted` that are modules (not built in), in the given order."""
        return [name for name in wanted if name in self.files]


def modules_root(tree: Path, release: str) -> Path:
    """Where an unpacked kernel package keeps its modules (/lib or, merged, /usr/lib)."""
    for candidate in (tree / "lib/modules" / release, tree / "usr/lib/modules" / release):
        if candidate.is_dir():
            return candidate
    raise BuildError(reason=f"the kernel package has no modules directory for {release}")


def index_kernel(runner: Runner, kernel_tree: Path, release: str) -> ModuleIndex:
    """Run depmod over the unpacked kernel package and read what it found."""
    source = modules_root(kernel_tree, release)
    runner.run(["depmod", "-b", str(source.parents[2]), release])
    builtin = source / "modules.builtin"
    return ModuleIndex.parse((source / "modules.dep").read_text(),
                             builtin.read_text() if builtin.is_file() else "")


def install_modules(runner: Runner, kernel_tree: Path, release: str, files: list[str],
                    destination_root: Path) -> None:
    """Copy module `files` into the guest tree's /lib/modules/RELEASE and index them there."""
    source = modules_root(kernel_tree, release)
    target = destination_root / "lib/modules" / release
    for relative in files:
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / relative, target / relative)
    for name in _SUPPORT_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)
    runner.run(["depmod", "-b", str(destination_root), release])
