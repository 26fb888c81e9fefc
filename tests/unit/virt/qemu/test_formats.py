"""Recognising image formats from their first bytes, and refusing dangerous ones."""

from __future__ import annotations

import struct

import pytest

from novalet.virt.qemu import formats
from tests.unit.virt.qemu.fakes import qcow2_header


def vmdk_sparse(create_type: str) -> bytes:
    head = bytearray(4096)
    head[0:4] = b"KDMV"
    struct.pack_into("<QQ", head, 28, 1, 2)  # descriptor at sector 1, 2 sectors long
    descriptor = (f'# Disk DescriptorFile\nversion=1\ncreateType="{create_type}"\n'
                  'RW 2048 SPARSE "disk.vmdk"\n').encode()
    head[512:512 + len(descriptor)] = descriptor
    return bytes(head)


def iso_head() -> bytes:
    head = bytearray(0x8800)
    head[0x8001:0x8006] = b"CD001"
    return bytes(head)


@pytest.mark.parametrize(("head", "fmt"), [
    (qcow2_header(1 << 30), "qcow2"),
    (qcow2_header(1 << 30, version=2), "qcow2"),
    (vmdk_sparse("monolithicSparse"), "vmdk"),
    (vmdk_sparse("streamOptimized"), "vmdk"),
    (b"\0" * 64 + b"\x7f\x10\xda\xbe" + b"\0" * 64, "vdi"),
    (b"conectix" + b"\0" * 512, "vpc"),
    (b"vhdxfile" + b"\0" * 512, "vhdx"),
    (iso_head(), "iso"),
    (b"\xeb\x63\x90" + b"\0" * 509 + b"\x55\xaa", "raw"),
    (b"hello, I am not a disk image\n", "raw"),
])
def test_formats_are_recognised(head: bytes, fmt: str) -> None:
    found = formats.inspect_bytes(head)
    assert (found.format, found.problem) == (fmt, None)


@pytest.mark.parametrize(("head", "problem"), [
    (qcow2_header(1 << 30, backing=True), "names a backing file"),
    (qcow2_header(1 << 30, data_file=True), "external data file"),
    (qcow2_header(1 << 30, version=7), "unknown qcow2 version"),
    (b"QFI\xfb\0\0", "truncated"),
    (vmdk_sparse("monolithicFlat"), "only monolithicSparse and streamOptimized"),
    (b"# Disk DescriptorFile\nRW 1 FLAT \"/etc/shadow\" 0\n", "names other files"),
    (b"QED\0" + b"\0" * 64, "QED images are not accepted"),
    (b"LUKS\xba\xbe" + b"\0" * 64, "encrypted"),
])
def test_dangerous_images_carry_a_problem(head: bytes, problem: str) -> None:
    found = formats.inspect_bytes(head)
    assert found.problem is not None and problem in found.problem


@pytest.mark.parametrize(("declared", "found", "ok"), [
    ("qcow2", "qcow2", True), ("qcow2", "raw", False), ("raw", "raw", True),
    ("raw", "qcow2", False), ("raw", "iso", True), ("iso", "iso", True), ("ami", "raw", True),
    ("vmdk", "vmdk", True), ("vmdk", "qcow2", False), ("vhd", "vpc", True),
    ("vhdx", "vhdx", True), ("vdi", "vdi", True), (None, "qcow2", True), (None, "raw", True),
    (None, "vmdk", False), ("ploop", "raw", False),
])
def test_declared_format_must_match_the_data(declared: str | None, found: str,
                                             ok: bool) -> None:
    problem = formats.check_declared(declared, formats.Inspection(found))
    assert (problem is None) == ok, problem


def test_a_problem_is_reported_whatever_was_declared() -> None:
    problem = formats.check_declared("qcow2", formats.Inspection("qcow2", "it names a backing file"))
    assert problem == "the image is qcow2 but it names a backing file"
