"""The fake driver's consoles: a loopback server per guest and display kind."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from novalet import config
from novalet.virt.driver import ConsoleUnavailable, GuestSpec, InstanceNotFoundOnHost
from novalet.virt.fake import FakeDriver

UUID = "11111111-2222-3333-4444-555555555555"


@pytest.fixture
async def driver(state_dir: Path) -> AsyncIterator[FakeDriver]:
    conf = config.Config()
    conf.set("DEFAULT", "state_path", str(state_dir))
    drv = FakeDriver(conf)
    await drv.spawn(GuestSpec(uuid=UUID, name="vm", hostname="vm", vcpus=1, memory_mb=64,
                              root_gb=1, ephemeral_gb=0, swap_mb=0, image_ref="img"))
    yield drv
    drv.close_consoles()


async def _rfb_server_init(host: str, port: int) -> tuple[int, int, bytes, str]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        assert await reader.readexactly(12) == b"RFB 003.008\n"
        writer.write(b"RFB 003.008\n")
        assert await reader.readexactly(2) == b"\x01\x01"
        writer.write(b"\x01")
        assert await reader.readexactly(4) == b"\x00\x00\x00\x00"
        writer.write(b"\x01")  # shared
        width, height = struct.unpack(">HH", await reader.readexactly(4))
        pixel_format = await reader.readexactly(16)
        (length,) = struct.unpack(">I", await reader.readexactly(4))
        return width, height, pixel_format, (await reader.readexactly(length)).decode()
    finally:
        writer.close()


async def test_vnc_is_an_rfb_server_named_after_the_instance(driver: FakeDriver) -> None:
    target = await driver.get_console(UUID, "vnc")
    assert target.host == "127.0.0.1" and target.port > 0
    width, height, pixel_format, name = await asyncio.wait_for(
        _rfb_server_init(target.host, target.port), 5)
    assert (width, height, name) == (640, 480, UUID)
    bpp, depth, big_endian, true_colour = pixel_format[:4]
    assert (bpp, depth, big_endian, true_colour) == (32, 24, 0, 1)
    assert struct.unpack(">HHHBBB", pixel_format[4:13]) == (255, 255, 255, 16, 8, 0)


@pytest.mark.parametrize("kind", ["serial", "spice"])
async def test_serial_and_spice_greet_then_echo(driver: FakeDriver, kind: str) -> None:
    target = await driver.get_console(UUID, kind)
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        line = await asyncio.wait_for(reader.readline(), 5)
        assert line == f"fake-{kind} {UUID}\n".encode()
        writer.write(b"hello\r")
        assert await asyncio.wait_for(reader.readexactly(6), 5) == b"hello\r"
    finally:
        writer.close()


async def test_one_server_per_guest_and_kind(driver: FakeDriver) -> None:
    first = await driver.get_console(UUID, "serial")
    assert await driver.get_console(UUID, "serial") == first
    assert (await driver.get_console(UUID, "vnc")).port != first.port


async def test_unknown_guest_and_kind(driver: FakeDriver) -> None:
    with pytest.raises(InstanceNotFoundOnHost):
        await driver.get_console("no-such-guest", "vnc")
    with pytest.raises(ConsoleUnavailable):
        await driver.get_console(UUID, "rdp")


async def test_destroy_closes_the_displays(driver: FakeDriver) -> None:
    target = await driver.get_console(UUID, "serial")
    reader, writer = await asyncio.open_connection(target.host, target.port)
    await reader.readline()
    await driver.destroy(UUID)
    assert await asyncio.wait_for(reader.read(), 5) == b""  # hung up
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection(target.host, target.port)
    assert driver.displays == {}


async def test_a_spawned_guest_prints_a_boot_log_of_several_lines(driver: FakeDriver) -> None:
    """Tempest's test_get_console_output_with_unlimited_size waits for more than
    three lines; the log ends with the line saying the guest booted."""
    output = await driver.get_console_output(UUID)
    lines = output.splitlines()
    assert len(lines) >= 4
    assert len(output.split("\n")) == len(lines)  # no newline after the last line
    assert lines[0] == "fake firmware: 1 vCPUs, 64 MiB"
    assert lines[-1] == f"fake guest vm ({UUID}) booted"
