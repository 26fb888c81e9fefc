"""The consoles of a real QEMU guest (the test image, TCG) as the QEMU driver gives them.

One guest boots for the module; every test reaches its VNC display, SPICE display
and interactive serial port at what QemuDriver.get_console says, and the serial
log keeps what the guest wrote whether or not a client was attached.
"""

from __future__ import annotations

import asyncio
import re
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from novalet import config
from novalet.console.types import ConsoleTarget
from novalet.image.testimage import builder
from novalet.virt.driver import GuestSpec
from novalet.virt.qemu.driver import QemuDriver
from novalet.virt.qemu.guest import GuestNotRunning
from tests.integration.test_qemu_driver import (READY, FileFetcher, make_conf, make_spec, meta,
                                                qemu_pids, wait_for)

pytestmark = pytest.mark.integration


@dataclass
class Guest:
    conf: config.Config
    fetcher: FileFetcher
    spec: GuestSpec

    def driver(self) -> QemuDriver:
        return QemuDriver(self.conf, self.fetcher)

    async def console(self, kind: str) -> ConsoleTarget:
        return await self.driver().get_console(self.spec.uuid, kind)


@pytest.fixture(scope="module")
def guest(guest_image: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guest]:
    state = tmp_path_factory.mktemp("qemu-consoles") / "state"
    conf = make_conf(state)
    fetcher = FileFetcher({"tiny": guest_image})
    spec = make_spec(meta("tiny", guest_image, "qcow2", **builder.image_properties()),
                     user_data=None)
    booted = Guest(conf, fetcher, spec)

    async def boot() -> None:
        driver = booted.driver()
        await driver.init_host("integration-host")
        await driver.spawn(spec)
        await wait_for(driver, spec.uuid, READY, 0)

    try:
        asyncio.run(boot())
        yield booted
    finally:
        asyncio.run(booted.driver().destroy(spec.uuid))
    assert qemu_pids(state) == set()


def rfb_banner(target: ConsoleTarget) -> bytes:
    with socket.create_connection((target.host, target.port), timeout=10) as conn:
        return conn.recv(12)


def spice_link(target: ConsoleTarget) -> tuple[bytes, int, int]:
    """A SpiceLinkMess for the main channel; the reply's magic, major version and error."""
    mess = struct.pack("<IBBIII", 0, 1, 0, 0, 0, 18)
    header = b"REDQ" + struct.pack("<III", 2, 2, len(mess))
    with socket.create_connection((target.host, target.port), timeout=10) as conn:
        conn.sendall(header + mess)
        reply = recv_exactly(conn, 16)
        magic, (major, _minor, size) = reply[:4], struct.unpack("<III", reply[4:])
        body = recv_exactly(conn, size)
    return magic, major, struct.unpack("<I", body[:4])[0]


def recv_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise AssertionError(f"connection closed after {len(data)} of {size} bytes")
        data += chunk
    return data


def serial_session(target: ConsoleTarget, lines: list[bytes], expect: bytes,
                   timeout: float = 30) -> bytes:
    """Type lines on the serial port; what came back by the time `expect` did."""
    with socket.create_connection((target.host, target.port), timeout=10) as conn:
        conn.settimeout(0.5)
        for line in lines:
            conn.sendall(line)
            time.sleep(0.3)
        seen = b""
        deadline = time.monotonic() + timeout
        while expect not in seen:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {expect!r} on the serial port within {timeout}s: "
                                     f"{seen[-2000:]!r}")
            try:
                chunk = conn.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                raise AssertionError(f"serial port closed; got {seen[-2000:]!r}")
            seen += chunk
        return seen


async def wait_console_text(guest: Guest, text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        out = await guest.driver().get_console_output(guest.spec.uuid)
        if text in out:
            return out
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not in the console log within {timeout}s:\n"
                                 f"{out[-2000:]}")
        await asyncio.sleep(0.2)


async def test_vnc_answers_rfb_3_8(guest: Guest) -> None:
    target = await guest.console("vnc")
    assert target.host == "127.0.0.1" and 5900 <= target.port < 6080
    assert rfb_banner(target) == b"RFB 003.008\n"


async def test_spice_answers_a_link_message(guest: Guest) -> None:
    target = await guest.console("spice")
    assert target.host == "127.0.0.1" and 10000 <= target.port <= 20000
    assert spice_link(target) == (b"REDQ", 2, 0)


async def test_the_serial_port_runs_commands_and_the_log_keeps_them(guest: Guest) -> None:
    target = await guest.console("serial")
    assert target.host == "127.0.0.1" and 10000 <= target.port <= 20000
    seen = serial_session(target, [b"\n", b"echo serial-$((6*7))\n"], b"serial-42")
    assert b"serial-42" in seen
    out = await wait_console_text(guest, "serial-42")
    # the boot, written while no client was attached, is in the log too
    ready = READY.search(out)
    assert ready is not None and ready.group(1) == guest.spec.uuid


async def test_output_while_no_client_is_attached_lands_in_the_log(guest: Guest) -> None:
    target = await guest.console("serial")
    # the job prints after the client has gone
    serial_session(target, [b"(sleep 2; echo detached-$((40+2))) &\n"], b"$ ")
    await wait_console_text(guest, "detached-42")


async def test_after_power_off_and_on_every_console_answers_again(guest: Guest) -> None:
    driver, uuid = guest.driver(), guest.spec.uuid
    readies = len(READY.findall(await driver.get_console_output(uuid)))
    await driver.power_off(uuid)
    for kind in ("vnc", "spice", "serial"):
        with pytest.raises(GuestNotRunning):
            await driver.get_console(uuid, kind)
    await guest.driver().power_on(uuid)
    await wait_for(driver, uuid, READY, readies)
    assert rfb_banner(await guest.console("vnc")) == b"RFB 003.008\n"
    assert spice_link(await guest.console("spice")) == (b"REDQ", 2, 0)
    seen = serial_session(await guest.console("serial"), [b"\n", b"echo again-$((1+1))\n"],
                          b"again-2")
    assert re.search(rb"again-2", seen)
    await wait_console_text(guest, "again-2")
