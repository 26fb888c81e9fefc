"""Guest consoles of the QEMU driver: port range, port picking, the record, get_console."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from novalet import config
from novalet.console.types import ConsoleTarget
from novalet.virt.driver import ConsoleUnavailable, GuestSpec, ImageMeta, InstanceNotFoundOnHost
from novalet.virt.qemu import consoles
from novalet.virt.qemu.consoles import (InvalidPortRange, NoFreePort, PortAllocator, can_bind,
                                        parse_range, pick)
from novalet.virt.qemu.driver import QemuDriver
from novalet.virt.qemu.guest import GuestNotRunning
from novalet.virt.qemu.layout import InstancePaths
from tests.unit.virt.qemu.conftest import make_spec
from tests.unit.virt.qemu.fakes import FakeProcesses

UUID_A = "0b9c3f4e-5a6d-4e7f-8a9b-0c1d2e3f4a5b"
UUID_B = "1b9c3f4e-5a6d-4e7f-8a9b-0c1d2e3f4a5b"


def free(host: str, port: int) -> bool:
    return True


def vm_ports(processes: FakeProcesses, driver: QemuDriver, uuid: str) -> tuple[int, int]:
    vm = processes.vm_for(InstancePaths(driver.instances_path, uuid).qmp)
    assert vm is not None
    spice = int(vm.option("-spice")[0].split(",")[0].removeprefix("port="))
    serial = next(a for a in vm.option("-chardev") if ",id=serial0," in a)
    return spice, int(serial.split("port=")[1].split(",")[0])


@pytest.fixture
async def running(driver: QemuDriver, image: ImageMeta) -> GuestSpec:
    spec = make_spec(image)
    await driver.spawn(spec)
    return spec


# --- the range and picking -----------------------------------------------------------------


def test_parse_range() -> None:
    assert parse_range("10000:20000") == (10000, 20000)
    assert parse_range(" 5000:5000 ") == (5000, 5000)


@pytest.mark.parametrize("bad", ["", "10000", "10000-20000", "a:b", "20000:10000",
                                 "0:10", "60000:70000", ":10", "1:2:3"])
def test_a_bad_range_is_refused_with_what_is_expected(bad: str) -> None:
    with pytest.raises(InvalidPortRange, match=r"FIRST:LAST with 1 <= FIRST <= LAST <= 65535"):
        parse_range(bad)


def test_pick_skips_ports_other_guests_hold_and_ports_in_use() -> None:
    busy = {("127.0.0.1", 10001)}
    chosen = pick([("spice", "127.0.0.1"), ("serial", "127.0.0.1")], 10000, 10010,
                  taken={10000, 10002}, prefer={}, is_free=lambda h, p: (h, p) not in busy)
    assert chosen == {"spice": 10003, "serial": 10004}


def test_pick_prefers_the_previous_port_when_still_usable() -> None:
    wanted = [("spice", "::1"), ("serial", "::1")]
    assert pick(wanted, 10000, 10010, set(), {"spice": 10007, "serial": 10009}, free) == {
        "spice": 10007, "serial": 10009}
    # taken by another guest meanwhile, busy, or outside the range now: a new one
    assert pick(wanted, 10000, 10010, {10007}, {"spice": 10007, "serial": 10020},
                lambda h, p: p != 10000) == {"spice": 10001, "serial": 10002}


def test_pick_leaves_out_a_kind_without_a_port() -> None:
    assert pick([("spice", "h"), ("serial", "h")], 10000, 10001, {10000}, {}, free) == {
        "spice": 10001}


def test_can_bind_tells_a_listening_port_from_a_free_one() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not can_bind("127.0.0.1", port)
    assert can_bind("127.0.0.1", port)


def test_can_bind_on_an_address_the_host_lacks_is_a_clear_error() -> None:
    with pytest.raises(consoles.VirtDriverError, match="cannot listen on 192.0.2.1"):
        can_bind("192.0.2.1", 10000)


async def test_the_allocator_records_its_choice_and_avoids_other_guests(tmp_path: Path
                                                                        ) -> None:
    from novalet.virt.qemu.cmdline import HostSettings
    host = HostSettings(accel="tcg", spice_listen="127.0.0.1", serial_listen="10.1.1.1")
    allocator = PortAllocator(10000, 10010, is_free=free)
    a, b = InstancePaths(tmp_path, UUID_A), InstancePaths(tmp_path, UUID_B)
    a.dir.mkdir()
    b.dir.mkdir()
    first = await allocator.claim(a, host)
    assert (first.spice, first.serial) == (10000, 10001)
    assert json.loads(a.console_record.read_text()) == {
        "spice": {"host": "127.0.0.1", "port": 10000},
        "serial": {"host": "10.1.1.1", "port": 10001}}
    second = await allocator.claim(b, host)
    assert (second.spice, second.serial) == (10002, 10003)
    again = await allocator.claim(a, host)  # a restart keeps its ports
    assert again == first
    moved = await allocator.claim(a, host, avoid={10000})
    assert (moved.spice, moved.serial) == (10004, 10001)
    with pytest.raises(NoFreePort, match="No free port for the spice console .* 10001:10001"):
        await PortAllocator(10001, 10001, is_free=free).claim(b, host)


# --- through the driver ------------------------------------------------------------------


async def test_get_console_gives_each_kind_at_the_proxy_address(
        conf: config.Config, driver: QemuDriver, running: GuestSpec,
        processes: FakeProcesses) -> None:
    conf.set("vnc", "server_proxyclient_address", "192.0.2.10")
    conf.set("spice", "server_proxyclient_address", "192.0.2.11")
    conf.set("serial_console", "proxyclient_address", "192.0.2.12")
    spice, serial = vm_ports(processes, driver, running.uuid)
    assert 10000 <= spice <= 20000 and 10000 <= serial <= 20000 and spice != serial
    vnc = await driver.get_console(running.uuid, "vnc")
    assert vnc.host == "192.0.2.10" and vnc.port >= 5900
    assert await driver.get_console(running.uuid, "spice") == ConsoleTarget("192.0.2.11", spice)
    assert await driver.get_console(running.uuid, "serial") == ConsoleTarget("192.0.2.12",
                                                                              serial)
    record = json.loads(InstancePaths(driver.instances_path, running.uuid)
                        .console_record.read_text())
    assert record == {"spice": {"host": "127.0.0.1", "port": spice},
                      "serial": {"host": "127.0.0.1", "port": serial},
                      "vnc": {"host": "127.0.0.1", "port": vnc.port}}


async def test_two_guests_get_different_ports(driver: QemuDriver, running: GuestSpec,
                                              image: ImageMeta,
                                              processes: FakeProcesses) -> None:
    other = make_spec(image)
    await driver.spawn(other)
    first, second = vm_ports(processes, driver, running.uuid), vm_ports(processes, driver,
                                                                        other.uuid)
    assert not set(first) & set(second)


async def test_a_stopped_guest_is_409_and_a_restart_gives_working_ports(
        driver: QemuDriver, running: GuestSpec, processes: FakeProcesses,
        _no_port_probes: set[tuple[str, int]]) -> None:
    spice, serial = vm_ports(processes, driver, running.uuid)
    await driver.power_off(running.uuid)
    for kind in ("vnc", "spice", "serial"):
        with pytest.raises(GuestNotRunning) as raised:
            await driver.get_console(running.uuid, kind)
        assert raised.value.code == 409
    _no_port_probes.add(("127.0.0.1", spice))  # someone else listens there now
    await driver.power_on(running.uuid)
    new_spice, new_serial = vm_ports(processes, driver, running.uuid)
    assert new_spice != spice and new_serial == serial
    assert (await driver.get_console(running.uuid, "spice")).port == new_spice
    await driver.reboot(running.uuid, hard=True)
    await driver.suspend(running.uuid)
    await driver.resume(running.uuid)
    assert (await driver.get_console(running.uuid, "serial")).port == new_serial


async def test_a_port_taken_between_the_check_and_the_launch_is_retried(
        driver: QemuDriver, image: ImageMeta, processes: FakeProcesses) -> None:
    processes.busy_ports = {10000, 10001, 10002}
    spec = make_spec(image)
    await driver.spawn(spec)
    spice, serial = vm_ports(processes, driver, spec.uuid)
    assert spice not in processes.busy_ports and serial not in processes.busy_ports
    assert (await driver.get_console(spec.uuid, "serial")).port == serial


async def test_a_port_clash_on_every_attempt_fails_the_spawn_cleanly(
        driver: QemuDriver, image: ImageMeta, processes: FakeProcesses) -> None:
    processes.busy_ports = set(range(10000, 10020))
    spec = make_spec(image)
    with pytest.raises(consoles.VirtDriverError, match="Address already in use"):
        await driver.spawn(spec)
    assert processes.running == []
    assert not InstancePaths(driver.instances_path, spec.uuid).dir.exists()


async def test_disabled_or_unknown_kinds_are_unavailable(
        conf: config.Config, make_driver: Any, image: ImageMeta, processes: FakeProcesses,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    conf.set("spice", "enabled", "false")
    conf.set("serial_console", "enabled", "false")
    conf.set("serial_console", "port_range", "nonsense")  # not read when nothing needs it
    driver: QemuDriver = make_driver()
    await driver.init_host("host-1")
    spec = make_spec(image)
    await driver.spawn(spec)
    vm = processes.vm_for(InstancePaths(driver.instances_path, spec.uuid).qmp)
    assert vm is not None and "-spice" not in vm.argv
    assert any(a.startswith("file,id=serial0,") for a in vm.option("-chardev"))
    for kind in ("spice", "serial", "rdp", "mks"):
        with pytest.raises(ConsoleUnavailable):
            await driver.get_console(spec.uuid, kind)
    assert (await driver.get_console(spec.uuid, "vnc")).port >= 5900
    # turned on later: a guest started without a serial port still has none
    conf.set("serial_console", "enabled", "true")
    with pytest.raises(ConsoleUnavailable):
        await driver.get_console(spec.uuid, "serial")
    with pytest.raises(InstanceNotFoundOnHost):
        await driver.get_console(UUID_A, "vnc")


def test_a_bad_port_range_stops_the_driver_with_a_clear_error(
        conf: config.Config, make_driver: Any) -> None:
    conf.set("serial_console", "port_range", "20000-10000")
    with pytest.raises(InvalidPortRange, match="not '20000-10000'"):
        make_driver()
