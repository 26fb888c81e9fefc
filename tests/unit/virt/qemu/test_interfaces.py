"""Interface hot-plug of the QEMU driver (interfaces.py), over the fake QMP."""

from __future__ import annotations

import pytest

from novalet.network.model import Vif
from novalet.virt.driver import GuestSpec, ImageMeta, VirtDriverError
from novalet.virt.qemu.driver import QemuDriver
from novalet.virt.qemu.layout import InstancePaths
from tests.unit.virt.qemu.conftest import make_spec
from tests.unit.virt.qemu.fakes import FakeProcesses, FakeQmp, FakeVm

VIF = Vif(id="0123456789abcdef", address="fa:16:3e:00:00:01", network_id="net-1",
          network_label="private", bridge="br100", fixed_ip="10.0.0.5", cidr="10.0.0.0/24",
          gateway="10.0.0.1")
NIC = f"nic-{VIF.tap}"


@pytest.fixture
async def running(driver: QemuDriver, image: ImageMeta) -> GuestSpec:
    spec = make_spec(image)
    await driver.spawn(spec)
    return spec


def _paths(driver: QemuDriver, uuid: str) -> InstancePaths:
    return InstancePaths(driver.instances_path, uuid)


def _vm(processes: FakeProcesses, driver: QemuDriver, uuid: str) -> FakeVm:
    vm = processes.vm_for(_paths(driver, uuid).qmp)
    assert vm is not None
    return vm


async def test_attach_hot_plugs_and_keeps_the_nic_for_later_starts(
        driver: QemuDriver, running: GuestSpec, processes: FakeProcesses) -> None:
    await driver.attach_interface(running.uuid, VIF)
    vm = _vm(processes, driver, running.uuid)
    assert vm.commands[-2:] == ["netdev_add", "device_add"] and NIC in vm.peripherals()
    assert _paths(driver, running.uuid).load().taps == ((VIF.tap, VIF.address),)
    await driver.attach_interface(running.uuid, VIF)  # attached already: nothing to do
    assert vm.commands.count("device_add") == 1
    await driver.power_off(running.uuid)
    await driver.power_on(running.uuid)
    assert any(VIF.address in d for d in _vm(processes, driver, running.uuid).option("-device"))


async def test_attach_to_a_stopped_guest_only_saves_it(
        driver: QemuDriver, running: GuestSpec, processes: FakeProcesses) -> None:
    await driver.power_off(running.uuid)
    await driver.attach_interface(running.uuid, VIF)
    assert _paths(driver, running.uuid).load().taps == ((VIF.tap, VIF.address),)
    assert processes.vm_for(_paths(driver, running.uuid).qmp) is None


async def test_a_refused_device_add_removes_the_netdev(
        driver: QemuDriver, running: GuestSpec, processes: FakeProcesses,
        qmp: FakeQmp) -> None:
    qmp.refuse.add("device_add")
    with pytest.raises(VirtDriverError):
        await driver.attach_interface(running.uuid, VIF)
    assert _vm(processes, driver, running.uuid).commands[-1] == "netdev_del"
    assert _paths(driver, running.uuid).load().taps == ()


async def test_detach_waits_for_the_guest_to_release_the_nic(
        driver: QemuDriver, running: GuestSpec, processes: FakeProcesses) -> None:
    await driver.attach_interface(running.uuid, VIF)
    await driver.detach_interface(running.uuid, VIF)
    vm = _vm(processes, driver, running.uuid)
    assert NIC not in vm.peripherals() and vm.commands[-1] == "netdev_del"
    assert _paths(driver, running.uuid).load().taps == ()


async def test_detach_fails_when_the_guest_keeps_the_nic(
        driver: QemuDriver, running: GuestSpec, processes: FakeProcesses) -> None:
    driver.conf.set("qemu", "detach_timeout", "0.1")
    await driver.attach_interface(running.uuid, VIF)
    _vm(processes, driver, running.uuid).acpi = False  # no hot-unplug support
    with pytest.raises(VirtDriverError, match="did not release NIC"):
        await driver.detach_interface(running.uuid, VIF)
    assert _paths(driver, running.uuid).load().taps == ((VIF.tap, VIF.address),)
