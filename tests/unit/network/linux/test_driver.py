"""The driver's reconciliation over fake doors: what apply, plug, unplug and teardown
create, keep and remove."""

from __future__ import annotations

import dataclasses
import json
from ipaddress import IPv4Interface
from pathlib import Path

import pytest

from novalet.network.linux import ApplyIncomplete, LinuxNetDriver
from novalet.network.linux.driver import vlan_link_name
from novalet.network.linux.firewall import render_ruleset
from novalet.network.linux.netlink import bridge_mac
from novalet.network.model import HostNetworkState, InstanceNet
from tests.unit.network.linux.conftest import make_vif
from tests.unit.network.linux.fakes import FakeNetlink, FakeRunner

TAP1, TAP2 = make_vif(1).tap, make_vif(2).tap


@pytest.fixture
def netlink(netlink: FakeNetlink) -> FakeNetlink:
    netlink.add("eth0", None, up=True)
    return netlink


async def test_apply_builds_the_whole_host(driver: LinuxNetDriver, netlink: FakeNetlink,
                                           runner: FakeRunner, state: HostNetworkState) -> None:
    await driver.apply(state)
    bridge = netlink.links_by_name["nvbr100"]
    assert bridge.kind == "bridge" and bridge.up and bridge.alias == "novalet:bridge:net-1"
    assert bridge.addresses == [IPv4Interface("10.0.0.1/24")]
    for n, tap in ((1, TAP1), (2, TAP2)):
        link = netlink.links_by_name[tap]
        assert link.kind == "tun" and link.up and netlink.master_of(tap) == "nvbr100"
        assert link.mac == f"fe:54:00:00:00:{n:02x}"
        assert link.alias == f"novalet:tap:{make_vif(n).id}"
    assert netlink.links_by_name["eth0"].addresses == [IPv4Interface("192.168.0.50/32")]
    assert netlink.sysctls["net/ipv4/ip_forward"] == "1"
    assert netlink.sysctls["net/ipv4/conf/nvbr100/route_localnet"] == "1"
    assert runner.nft_scripts() == [render_ruleset(state)]
    assert len(runner.commands("dnsmasq")) == 1
    assert driver.dnsmasq.pid("nvbr100") in runner.processes


async def test_apply_twice_changes_nothing_the_second_time(
        driver: LinuxNetDriver, netlink: FakeNetlink, runner: FakeRunner,
        state: HostNetworkState) -> None:
    await driver.apply(state)
    netlink.changes.clear()
    await driver.apply(state)
    assert netlink.changes == []
    assert len(runner.commands("dnsmasq")) == 1
    assert runner.signals == []
    assert runner.nft_scripts()[0] == runner.nft_scripts()[1]


async def test_removed_instance_loses_its_tap_and_network_its_bridge_and_dnsmasq(
        driver: LinuxNetDriver, netlink: FakeNetlink, runner: FakeRunner,
        state: HostNetworkState) -> None:
    await driver.apply(state)
    netlink.add("br-admin", "bridge")            # not Novalet's: never touched
    netlink.add("tapother", "tun")               # not Novalet's either
    await driver.apply(dataclasses.replace(state, instances=state.instances[:1]))
    assert TAP2 not in netlink.links_by_name and TAP1 in netlink.links_by_name
    await driver.apply(HostNetworkState(host="host-1", public_interface="eth0"))
    assert set(netlink.links_by_name) == {"eth0", "br-admin", "tapother"}
    assert runner.processes == {}
    assert netlink.links_by_name["eth0"].addresses == []
    assert runner.nft_scripts()[-1] == render_ruleset(HostNetworkState(host=""))


async def test_a_tap_held_open_or_plugged_is_kept_and_quarantined(
        driver: LinuxNetDriver, netlink: FakeNetlink, runner: FakeRunner,
        state: HostNetworkState) -> None:
    await driver.apply(state)
    netlink.links_by_name[TAP2].carrier = True   # its QEMU still runs
    late = make_vif(3)
    await driver.plug(late)                       # plugged, its instance not in a state yet
    assert f'"{late.tap}" : drop' in runner.nft_scripts()[-1]
    await driver.apply(dataclasses.replace(state, instances=state.instances[:1]))
    assert TAP2 in netlink.links_by_name and late.tap in netlink.links_by_name
    script = runner.nft_scripts()[-1]
    assert f'"{TAP2}" : drop' in script and f'"{late.tap}" : drop' in script
    netlink.links_by_name[TAP2].carrier = False  # its QEMU exited
    await driver.apply(dataclasses.replace(state, instances=state.instances[:1]))
    assert TAP2 not in netlink.links_by_name
    assert late.tap in netlink.links_by_name     # plugged: only unplug removes it


async def test_plug_makes_tap_on_bridge_even_before_apply(
        driver: LinuxNetDriver, netlink: FakeNetlink, runner: FakeRunner) -> None:
    vif = make_vif(1)
    await driver.plug(vif)
    assert netlink.master_of(vif.tap) == "nvbr100"
    assert netlink.links_by_name["nvbr100"].alias == "novalet:bridge:net-1"
    # the guest's gateway address from the start, so the bridge's MAC is the final one
    gateway = IPv4Interface(f"{vif.gateway}/24")
    assert netlink.links_by_name["nvbr100"].addresses == [gateway]
    assert netlink.links_by_name["nvbr100"].mac == bridge_mac("nvbr100", gateway)
    # no state applied yet: the firewall is not rendered from nothing (issue 14)
    assert runner.nft_scripts() == []


async def test_plug_of_a_vif_already_in_the_state_keeps_the_firewall(
        driver: LinuxNetDriver, runner: FakeRunner, state: HostNetworkState) -> None:
    await driver.apply(state)
    await driver.plug(make_vif(1))
    assert len(runner.nft_scripts()) == 1


async def test_unplug_removes_the_tap_and_tolerates_its_absence(
        driver: LinuxNetDriver, netlink: FakeNetlink) -> None:
    vif = make_vif(1)
    await driver.plug(vif)
    await driver.unplug(vif)
    assert vif.tap not in netlink.links_by_name
    await driver.unplug(vif)


async def test_teardown_removes_only_what_novalet_made(
        driver: LinuxNetDriver, netlink: FakeNetlink, runner: FakeRunner,
        state: HostNetworkState, tmp_path: Path) -> None:
    netlink.add("br-admin", "bridge", addresses=[IPv4Interface("192.168.9.1/24")])
    await driver.apply(state)
    await driver.plug(make_vif(7))
    await driver.teardown()
    assert set(netlink.links_by_name) == {"eth0", "br-admin"}
    assert netlink.links_by_name["br-admin"].addresses == [IPv4Interface("192.168.9.1/24")]
    assert runner.processes == {}
    assert runner.nft_scripts()[-1] == render_ruleset(HostNetworkState(host=""))
    assert list((tmp_path / "state" / "dnsmasq").iterdir()) == []
    assert json.loads((tmp_path / "state" / "floating-addresses.json").read_text()) == []


async def test_an_existing_bridge_is_reused_and_kept(
        driver: LinuxNetDriver, netlink: FakeNetlink, state: HostNetworkState) -> None:
    netlink.add("nvbr100", "bridge", up=True, addresses=[IPv4Interface("192.168.7.1/24")])
    await driver.apply(state)
    assert netlink.links_by_name["nvbr100"].addresses == [IPv4Interface("192.168.7.1/24"),
                                                          IPv4Interface("10.0.0.1/24")]
    await driver.teardown()
    assert "nvbr100" in netlink.links_by_name


async def test_a_changed_gateway_replaces_the_address_on_novalets_bridge(
        driver: LinuxNetDriver, netlink: FakeNetlink, state: HostNetworkState) -> None:
    await driver.apply(state)
    state.networks[0].gateway = "10.0.0.254"
    await driver.apply(state)
    assert netlink.links_by_name["nvbr100"].addresses == [IPv4Interface("10.0.0.254/24")]


async def test_vlan_network_gets_its_sub_interface(
        driver: LinuxNetDriver, netlink: FakeNetlink, state: HostNetworkState) -> None:
    state.networks[0].vlan, state.networks[0].interface = 100, "eth0"
    state.networks[0].mtu = 1400
    await driver.apply(state)
    vlan = netlink.links_by_name["eth0.100"]
    assert vlan.vlan == ("eth0", 100) and vlan.alias == "novalet:vlan:net-1"
    assert netlink.master_of("eth0.100") == "nvbr100" and vlan.mtu == 1400
    await driver.apply(HostNetworkState(host="h"))
    assert set(netlink.links_by_name) == {"eth0"}


async def test_flat_network_with_an_uplink_enslaves_it_without_owning_it(
        driver: LinuxNetDriver, netlink: FakeNetlink, state: HostNetworkState) -> None:
    netlink.add("eth1", None)
    state.networks[0].interface = "eth1"
    await driver.apply(state)
    assert netlink.master_of("eth1") == "nvbr100"
    await driver.teardown()
    assert "eth1" in netlink.links_by_name


async def test_vlan_network_without_an_interface_stays_on_its_bridge(
        driver: LinuxNetDriver, netlink: FakeNetlink, state: HostNetworkState) -> None:
    state.networks[0].vlan = 100
    await driver.apply(state)
    assert {link.kind for link in netlink.links_by_name.values()} == {None, "bridge", "tun"}
    assert netlink.master_of(TAP1) == "nvbr100"


def test_vlan_link_names_fit_in_fifteen_characters() -> None:
    assert vlan_link_name("eth0", 100) == "eth0.100"
    assert vlan_link_name("enp0s31f6abc", 1000) == "vlan1000"


async def test_one_broken_part_does_not_stop_the_others(
        driver: LinuxNetDriver, netlink: FakeNetlink, runner: FakeRunner,
        state: HostNetworkState) -> None:
    state.networks[0].vlan, state.networks[0].interface = 5, "eth7"   # no such parent
    state.public_interface = "eth9"               # no such interface
    with pytest.raises(ApplyIncomplete) as caught:
        await driver.apply(state)
    message = str(caught.value)
    assert "eth7" in message and "eth9" in message
    assert netlink.master_of(TAP1) == "nvbr100"   # the rest was done
    assert runner.nft_scripts() and driver.dnsmasq.pid("nvbr100") is not None


async def test_a_vif_on_an_unknown_bridge_is_reported(
        driver: LinuxNetDriver, state: HostNetworkState) -> None:
    stray = make_vif(5, bridge="nvbr999")
    state.instances.append(InstanceNet("cccc-3", "p", [stray]))
    with pytest.raises(ApplyIncomplete, match="on bridge nvbr999, which no network"):
        await driver.apply(state)


async def test_firewall_failure_is_reported_after_everything_else(
        driver: LinuxNetDriver, runner: FakeRunner, state: HostNetworkState) -> None:
    runner.fail["nft"] = "Error: Could not process rule"
    with pytest.raises(ApplyIncomplete, match="nft failed"):
        await driver.apply(state)
    assert driver.dnsmasq.pid("nvbr100") is not None


async def test_floating_addresses_follow_the_state(
        driver: LinuxNetDriver, netlink: FakeNetlink, state: HostNetworkState,
        tmp_path: Path) -> None:
    netlink.add("eth1", None)
    netlink.links_by_name["eth0"].addresses.append(IPv4Interface("192.168.0.2/24"))
    await driver.apply(state)
    state.floating[0].floating_ip = "192.168.0.51"
    state.floating[0].interface = "eth1"
    await driver.apply(state)
    assert netlink.links_by_name["eth0"].addresses == [IPv4Interface("192.168.0.2/24")]
    assert netlink.links_by_name["eth1"].addresses == [IPv4Interface("192.168.0.51/32")]
    record = json.loads((tmp_path / "state" / "floating-addresses.json").read_text())
    assert record == [["eth1", "192.168.0.51"]]


async def test_no_public_interface_means_nat_only(
        driver: LinuxNetDriver, netlink: FakeNetlink, state: HostNetworkState) -> None:
    await driver.apply(dataclasses.replace(state, public_interface=None))
    assert netlink.links_by_name["eth0"].addresses == []


async def test_metadata_elsewhere_turns_route_localnet_off(
        driver: LinuxNetDriver, netlink: FakeNetlink, state: HostNetworkState) -> None:
    await driver.apply(state)
    await driver.apply(dataclasses.replace(state, metadata_host="10.0.0.1"))
    assert netlink.sysctls["net/ipv4/conf/nvbr100/route_localnet"] == "0"


async def test_missing_br_netfilter_is_loaded_or_warned_about(
        driver: LinuxNetDriver, netlink: FakeNetlink, runner: FakeRunner,
        state: HostNetworkState, caplog: pytest.LogCaptureFixture) -> None:
    del netlink.sysctls["net/bridge/bridge-nf-call-iptables"]
    await driver.apply(state)
    await driver.apply(state)
    assert runner.commands("modprobe") == [["modprobe", "br_netfilter"]] * 2
    assert caplog.text.count("no br_netfilter") == 1


async def test_a_network_without_dhcp_has_no_dnsmasq(
        driver: LinuxNetDriver, runner: FakeRunner, state: HostNetworkState) -> None:
    await driver.apply(state)
    state.networks[0].dhcp = False
    await driver.apply(state)
    assert runner.processes == {}
    assert driver.dnsmasq.bridges() == []


async def test_a_plugged_tap_that_left_the_state_goes_once_its_qemu_exits(
        driver: LinuxNetDriver, netlink: FakeNetlink, state: HostNetworkState) -> None:
    """The old host of an evacuated guest: its tap was plugged and in the state; the
    guest moved away (its QEMU still running), then the restarted compute destroyed
    it. The tap goes at the next apply; before, it was kept for as long as the network
    service ran, plugged."""
    moved = make_vif(2)
    await driver.plug(moved)
    await driver.apply(state)
    netlink.links_by_name[moved.tap].carrier = True   # the stale guest still runs
    await driver.apply(dataclasses.replace(state, instances=state.instances[:1]))
    assert moved.tap in netlink.links_by_name
    netlink.links_by_name[moved.tap].carrier = False  # destroyed
    await driver.apply(dataclasses.replace(state, instances=state.instances[:1]))
    assert moved.tap not in netlink.links_by_name


async def test_a_floating_ip_new_on_this_host_is_announced_once(
        driver: LinuxNetDriver, netlink: FakeNetlink, state: HostNetworkState) -> None:
    """Its router still has the MAC of the host the guest left: a gratuitous ARP
    tells it (nova-network's send_arp_for_ha); an address already here is not
    announced again at every apply."""
    await driver.apply(state)
    assert netlink.announced == [("eth0", "192.168.0.50")]
    await driver.apply(state)
    assert netlink.announced == [("eth0", "192.168.0.50")]
