"""Recognising a disk image's format from its first bytes, without asking QEMU.

Image data comes from users. Letting QEMU probe it is how a guest disk once
became a way to read host files (a "raw" image holding a qcow2 header whose
backing file is /etc/shadow; a VMDK descriptor naming host files as extents).
So the format is read here, in plain Python, and checked against what the
image service declares before any QEMU tool opens the file; from then on
every QEMU command is told the format explicitly.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

HEADER_BYTES = 64 * 1024
"""Enough to see every header below, the ISO9660 descriptor at 32 KiB included."""

QCOW2_INCOMPAT_DATA_FILE = 1 << 2


@dataclass(frozen=True)
class Inspection:
    """What the first bytes of an image say."""

    format: str  # a qemu-img format name: raw, qcow2, vmdk, vdi, vpc, vhdx, qed, luks; or iso
    problem: str | None = None  # why the image must not be used, if it must not


def inspect(path: Path) -> Inspection:
    with path.open("rb") as handle:
        head = handle.read(HEADER_BYTES)
    return inspect_bytes(head)


def inspect_bytes(head: bytes) -> Inspection:
    if head.startswith(b"QFI\xfb"):
        return _qcow2(head)
    if head.startswith(b"KDMV"):
        return _vmdk_sparse(head)
    if head.startswith(b"# Disk DescriptorFile"):
        return Inspection("vmdk", "a VMDK descriptor file names other files as its extents")
    if head[64:68] == b"\x7f\x10\xda\xbe":
        return Inspection("vdi")
    if head.startswith(b"conectix"):
        return Inspection("vpc")
    if head.startswith(b"vhdxfile"):
        return Inspection("vhdx")
    if head.startswith(b"QED\0"):
        return Inspection("qed", "QED images are not accepted")
    if head.startswith(b"LUKS\xba\xbe"):
        return Inspection("luks", "encrypted (LUKS) images are not accepted")
    if head[0x8001:0x8006] == b"CD001":
        return Inspection("iso")
    return Inspection("raw")


def _qcow2(head: bytes) -> Inspection:
    if len(head) < 72:
        return Inspection("qcow2", "the qcow2 header is truncated")
    version, backing_offset, backing_size = struct.unpack(">IQI", head[4:20])
    if backing_offset or backing_size:
        return Inspection("qcow2", "it names a backing file")
    if version not in (2, 3):
        return Inspection("qcow2", f"unknown qcow2 version {version}")
    if version == 3:
        if len(head) < 80:
            return Inspection("qcow2", "the qcow2 v3 header is truncated")
        (incompatible,) = struct.unpack(">Q", head[72:80])
        if incompatible & QCOW2_INCOMPAT_DATA_FILE:
            return Inspection("qcow2", "it keeps its data in an external data file")
    return Inspection("qcow2")


def _vmdk_sparse(head: bytes) -> Inspection:
    # Sparse extent header: descriptor offset and size (in sectors) at bytes 28 and 36.
    if len(head) < 44:
        return Inspection("vmdk", "the VMDK header is truncated")
    desc_sector, desc_sectors = struct.unpack("<QQ", head[28:44])
    start, end = desc_sector * 512, (desc_sector + desc_sectors) * 512
    if not desc_sector or end > len(head):
        return Inspection("vmdk", "its descriptor is missing or too far into the file")
    descriptor = head[start:end].split(b"\0")[0].decode("ascii", "replace")
    create_type = ""
    for line in descriptor.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "createType":
            create_type = value.strip().strip('"')
    if create_type not in ("monolithicSparse", "streamOptimized"):
        return Inspection("vmdk", f"VMDK type {create_type or 'unknown'!r} may name other "
                                  "files; only monolithicSparse and streamOptimized are accepted")
    return Inspection("vmdk")


# The image service's disk_format -> the formats its data may really have.
DECLARED: dict[str, frozenset[str]] = {
    "qcow2": frozenset({"qcow2"}),
    "raw": frozenset({"raw", "iso"}),
    "ami": frozenset({"raw"}),
    "iso": frozenset({"iso", "raw"}),
    "vmdk": frozenset({"vmdk"}),
    "vdi": frozenset({"vdi"}),
    "vhd": frozenset({"vpc"}),
    "vhdx": frozenset({"vhdx"}),
}


def check_declared(declared: str | None, found: Inspection) -> str | None:
    """Why data of the inspected format can't be an image declared as `declared`, or None."""
    if found.problem:
        return f"the image is {found.format} but {found.problem}"
    if declared is None:
        if found.format in ("qcow2", "raw"):
            return None
        return f"the image has no disk_format and holds {found.format} data"
    allowed = DECLARED.get(declared)
    if allowed is None:
        return f"disk_format {declared!r} is not supported by the QEMU driver"
    if found.format not in allowed:
        return f"the image is declared {declared} but its data is {found.format}"
    return None
