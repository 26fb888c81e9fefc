"""The netlink door over a fake pyroute2: idempotence, ownership, refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest

from novalet.network.linux.netlink import (
    Link,
    Netlink,
    NetlinkFailed,
    bridge_mac,
    gratuitous_arp,
    owner_alias,
    tap_mac,
)
from tests.unit.network.linux.fakes import FakeIPRoute, FakeLink


@pytest.fixture
def ipr() -> FakeIPRoute:
    return FakeIPRoute()


@pytest.fixture
async def door(ipr: FakeIPRoute) -> AsyncIterator[Netlink]:
    netlink = Netlink()
    netlink._ipr = ipr   # already "open": the worker thread never reaches pyroute2
    yield netlink
    await netlink.close()


def test_bridge_mac_is_stable_unicast_and_locally_administered() -> None:
    mac = bridge_mac("nvbr100")
    assert mac == bridge_mac("nvbr100") != bridge_mac("nvbr101")
    here, there = IPv4Interface("10.0.0.3/24"), IPv4Interface("10.0.0.4/24")
    assert bridge_mac("nvbr100", here) == bridge_mac("nvbr100", here) != bridge_mac("nvbr100", there)
    assert int(mac.split(":")[0], 16) == 0x02


def test_tap_mac_keeps_the_guest_part() -> None:
    assert tap_mac("52:54:00:AB:cd:01") == "fe:54:00:ab:cd:01"


def test_link_roles_come_from_the_alias() -> None:
    def link(alias: str | None) -> Link:
        return Link("x", 1, None, None, None, 1500, True, False, alias)
    assert link(owner_alias("tap", "vif-1")).role == "tap"
    assert link("novalet:bridge:net-1").owned
    assert link("uplink").role is None and not link(None).owned


async def test_bridge_is_created_once_with_owner_mac_address_and_mtu(
        door: Netlink, ipr: FakeIPRoute) -> None:
    gateway = IPv4Interface("10.0.0.1/24")
    await door.ensure_bridge("nvbr100", owner="novalet:bridge:n", address=gateway, mtu=1400)
    bridge = ipr.by_name("nvbr100")
    assert (bridge.kind, bridge.alias, bridge.mac, bridge.mtu, bridge.up) == (
        "bridge", "novalet:bridge:n", bridge_mac("nvbr100", gateway), 1400, True)
    assert bridge.addresses == [gateway]
    before = len(ipr.changes())
    await door.ensure_bridge("nvbr100", owner="novalet:bridge:n", address=gateway, mtu=1400)
    assert len(ipr.changes()) == before


async def test_stale_addresses_go_only_from_novalets_bridges(
        door: Netlink, ipr: FakeIPRoute) -> None:
    ipr.links[5] = FakeLink("br-admin", "bridge", 5, up=True,
                            addresses=[IPv4Interface("192.168.1.1/24")])
    await door.ensure_bridge("br-admin", owner="novalet:bridge:n",
                             address=IPv4Interface("10.0.0.1/24"))
    assert ipr.by_name("br-admin").addresses == [IPv4Interface("192.168.1.1/24"),
                                                 IPv4Interface("10.0.0.1/24")]
    assert ipr.by_name("br-admin").alias is None
    await door.ensure_bridge("nvbr1", owner="novalet:bridge:n", address=IPv4Interface("10.1.0.1/24"))
    await door.ensure_bridge("nvbr1", owner="novalet:bridge:n", address=IPv4Interface("10.1.0.9/24"))
    assert ipr.by_name("nvbr1").addresses == [IPv4Interface("10.1.0.9/24")]


async def test_a_name_taken_by_another_kind_is_refused(door: Netlink, ipr: FakeIPRoute) -> None:
    ipr.links[5] = FakeLink("nvbr100", "veth", 5)
    with pytest.raises(NetlinkFailed, match="it exists as a veth interface"):
        await door.ensure_bridge("nvbr100", owner="novalet:bridge:n")
    with pytest.raises(NetlinkFailed, match="it exists as a veth interface"):
        await door.ensure_tap("nvbr100", "nvbr100", owner="novalet:tap:v")


async def test_tap_is_persistent_owned_and_on_its_bridge(door: Netlink, ipr: FakeIPRoute) -> None:
    await door.ensure_bridge("nvbr100", owner="novalet:bridge:n")
    await door.ensure_tap("tapabc", "nvbr100", owner="novalet:tap:v", mac="fe:54:00:00:00:01",
                          mtu=1400)
    tap = ipr.by_name("tapabc")
    assert (tap.kind, tap.alias, tap.mac, tap.mtu, tap.up) == (
        "tun", "novalet:tap:v", "fe:54:00:00:00:01", 1400, True)
    assert tap.master == ipr.by_name("nvbr100").index
    add = next(kw for kind, cmd, kw in ipr.calls if cmd == "add" and kw["ifname"] == "tapabc")
    assert add["kind"] == "tuntap" and add["mode"] == "tap" and add["ifr"]["no_pi"] == 1
    assert add["ifr"]["multi_queue"] == 0   # QEMU opens it single-queue


async def test_a_tap_qemu_made_itself_is_adopted(door: Netlink, ipr: FakeIPRoute) -> None:
    await door.ensure_bridge("nvbr100", owner="novalet:bridge:n")
    ipr.links[9] = FakeLink("tapabc", "tun", 9, up=True, carrier=True)
    await door.ensure_tap("tapabc", "nvbr100", owner="novalet:tap:v")
    assert ipr.by_name("tapabc").alias == "novalet:tap:v"
    assert not [kw for _, cmd, kw in ipr.calls if cmd == "add" and kw["ifname"] == "tapabc"]


async def test_tap_needs_an_existing_bridge(door: Netlink) -> None:
    with pytest.raises(NetlinkFailed, match="use interface nvbr404"):
        await door.ensure_tap("tapabc", "nvbr404", owner="novalet:tap:v")


async def test_vlan_interface_rides_on_its_parent(door: Netlink, ipr: FakeIPRoute) -> None:
    ipr.links[3] = FakeLink("eth0", None, 3, up=True)
    await door.ensure_bridge("nvbr100", owner="novalet:bridge:n")
    await door.ensure_vlan("eth0.100", parent="eth0", vlan=100, bridge="nvbr100",
                           owner="novalet:vlan:n")
    add = next(kw for _, cmd, kw in ipr.calls if cmd == "add" and kw["ifname"] == "eth0.100")
    assert (add["kind"], add["link"], add["vlan_id"]) == ("vlan", 3, 100)
    assert ipr.by_name("eth0.100").master == ipr.by_name("nvbr100").index


@pytest.mark.parametrize("name", ["", "a" * 16, "a/b", "a b"])
async def test_bad_interface_names_are_refused(door: Netlink, name: str) -> None:
    with pytest.raises(NetlinkFailed, match="1 to 15 characters"):
        await door.ensure_bridge(name, owner="novalet:bridge:n")


async def test_delete_and_addresses_are_idempotent(door: Netlink, ipr: FakeIPRoute) -> None:
    ipr.links[3] = FakeLink("eth0", None, 3, up=True)
    floating = IPv4Interface("192.168.0.50/32")
    assert await door.add_address("eth0", floating) is True
    assert await door.add_address("eth0", floating) is False
    assert await door.ipv4_addresses("eth0") == [floating]
    assert await door.remove_address("eth0", floating) is True
    assert await door.remove_address("eth0", floating) is False
    assert await door.remove_address("eth404", floating) is False
    assert await door.delete_link("eth0") is True
    assert await door.delete_link("eth0") is False
    with pytest.raises(NetlinkFailed, match="use interface eth0: no such interface"):
        await door.add_address("eth0", floating)


async def test_sysctls_are_written_only_when_different(
        door: Netlink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("novalet.network.linux.netlink.PROC_SYS", tmp_path)
    (tmp_path / "net" / "ipv4").mkdir(parents=True)
    knob = tmp_path / "net" / "ipv4" / "ip_forward"
    knob.write_text("0\n")
    assert await door.write_sysctl("net/ipv4/ip_forward", "1") is True
    assert knob.read_text() == "1"
    assert await door.read_sysctl("net/ipv4/ip_forward") == "1"
    assert await door.write_sysctl("net/bridge/bridge-nf-call-iptables", "1") is False
    assert await door.read_sysctl("net/bridge/bridge-nf-call-iptables") is None


async def test_unexpected_errors_name_the_operation(door: Netlink, ipr: FakeIPRoute,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(1, "Operation not permitted")
    monkeypatch.setattr(ipr, "link", broken)
    with pytest.raises(NetlinkFailed, match="Could not list links: .*Operation not permitted"):
        await door.links()


def test_a_gratuitous_arp_says_the_address_is_at_the_links_mac() -> None:
    frame = gratuitous_arp("02:00:00:aa:bb:cc", IPv4Address("172.24.4.7"))
    mac, ip = bytes.fromhex("020000aabbcc"), bytes([172, 24, 4, 7])
    assert frame[:14] == b"\xff" * 6 + mac + b"\x08\x06"       # broadcast, ARP
    assert frame[14:22] == bytes.fromhex("0001080006040001")   # Ethernet/IPv4 request
    assert frame[22:] == mac + ip + b"\x00" * 6 + ip           # sender IP = target IP
