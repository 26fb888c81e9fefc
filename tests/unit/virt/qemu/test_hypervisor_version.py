"""The QEMU version os-hypervisors shows, as Nova encodes it."""

from __future__ import annotations

import pytest

from novalet.virt.qemu.host_facts import parse_qemu_version


@pytest.mark.parametrize(("text", "expected"), [
    ("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n", 7002022),
    ("QEMU emulator version 8.2.2\nCopyright (c) 2003-2023 Fabrice Bellard", 8002002),
    ("QEMU emulator version 9.1", 9001000),
    ("", 0),
    ("something else", 0),
])
def test_parse_qemu_version(text: str, expected: int) -> None:
    assert parse_qemu_version(text) == expected
