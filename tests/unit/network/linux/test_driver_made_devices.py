"""The VIF seam's second device kind: a device the virt driver makes itself (libvirt's
tap, the host end of a container driver's veth pair), named `vif.tap`. The network
service makes its bridge, puts it on the bridge once it exists, filters it by name,
remembers its kind across restarts, and never creates or deletes it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from novalet.network.linux import LinuxNetDriver
from novalet.network.model import HostNetworkState
from tests.unit.network.linux.conftest import make_vif
from tests.unit.network.linux.fakes import FakeNetlink, FakeRunner

VIF = make_vif(1)


async def test_a_driver_made_device_is_enslaved_once_it_exists_and_never_created(
        driver: LinuxNetDriver, netlink: FakeNetlink, runner: FakeRunner,
        state: HostNetworkState) -> None:
    netlink.add("eth0", None, up=True)
    await driver.plug(VIF, device="driver")
    assert "nvbr100" in netlink.links_by_name       # the bridge it will join
    assert VIF.tap not in netlink.links_by_name     # not made: the hypervisor does that
    await driver.apply(state)
    assert VIF.tap not in netlink.links_by_name     # apply does not make it either
    netlink.add(VIF.tap, "veth")                    # the virt driver makes it
    await driver.apply(state)
    assert netlink.master_of(VIF.tap) == "nvbr100"
    assert f'"{VIF.tap}" : jump' in runner.nft_scripts()[-1]  # filtered by its name


async def test_a_driver_made_device_is_plugged_at_once_when_it_exists(
        driver: LinuxNetDriver, netlink: FakeNetlink) -> None:
    netlink.add(VIF.tap, "tun")                     # libvirt made the tap first
    await driver.plug(VIF, device="driver")
    assert netlink.master_of(VIF.tap) == "nvbr100"


async def test_its_kind_outlives_a_restart_and_unplug_leaves_the_device(
        tmp_path: Path, runner: FakeRunner, netlink: FakeNetlink,
        state: HostNetworkState) -> None:
    netlink.add("eth0", None, up=True)
    first = LinuxNetDriver(tmp_path / "state", runner, netlink=netlink)
    await first.plug(VIF, device="driver")
    restarted = LinuxNetDriver(tmp_path / "state", runner, netlink=netlink)
    await restarted.apply(state)
    assert VIF.tap not in netlink.links_by_name     # still known as the driver's
    netlink.add(VIF.tap, "veth")
    await restarted.unplug(VIF, device="driver")
    assert VIF.tap in netlink.links_by_name         # the virt driver removes it
    gone = dataclasses.replace(state, instances=state.instances[1:])
    await restarted.apply(gone)                     # its instance left the state
    assert VIF.tap in netlink.links_by_name         # still not ours to delete
    assert not (tmp_path / "state" / "devices.json").read_text().strip("{}")
