"""Routers in the nftables rendering (NetworkOnHost 1.1: needs_router, snat_address):
a network of the nova-network face is masqueraded as before; a network made through
the network API leaves its bridge only SNATed to its router's gateway address, as
replies to a floating IP, from its floating-IP holders or to a remote metadata
server; and how the state backports these for a 1.0 host."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from ipaddress import IPv4Interface

import pytest

from novalet.network.linux import LinuxNetDriver
from novalet.network.linux.firewall import render_ruleset
from novalet.network.model import FloatingNat, HostNetworkState, NetworkOnHost
from novalet.network.state import backported_for_1_0
from tests.unit.network.linux.conftest import make_state
from tests.unit.network.linux.fakes import FakeNetlink

LEAVING = 'iifname "nvbr100" oifname != "nvbr100"'


def _routed(snat: str | None, **overrides: object) -> HostNetworkState:
    state = make_state(egress_filtered=True, **overrides)
    (network,) = state.networks
    state.networks = [dataclasses.replace(network, needs_router=True, snat_address=snat)]
    return state


def _chain(script: str, name: str) -> list[str]:
    lines = [line.strip() for line in script.splitlines()]
    start = lines.index(f"chain {name} {{")
    return lines[start + 1:lines.index("}", start)]


def test_a_nova_network_network_is_masqueraded_as_before() -> None:
    script = render_ruleset(make_state(egress_filtered=True))
    assert 'oifname != "nvbr100" ip saddr 10.0.0.0/24 ip daddr != 10.0.0.0/24 masquerade' \
        in _chain(script, "postrouting")
    assert "chain router-forward {" not in script


def test_without_a_router_gateway_nothing_leaves_but_floating_traffic() -> None:
    script = render_ruleset(_routed(None))
    assert not [r for r in _chain(script, "postrouting") if "masquerade" in r
                or "snat to 203.0.113.5" in r]
    assert _chain(script, "router-forward") == [
        "type filter hook forward priority filter - 5; policy accept;",
        f"{LEAVING} ct status dnat accept",
        f"{LEAVING} ip saddr 10.0.0.11 accept",  # its floating IP's holder
        f"{LEAVING} counter drop",
    ]


def test_with_a_router_gateway_it_is_snated_to_the_gateway_address() -> None:
    script = render_ruleset(_routed("203.0.113.5"))
    postrouting = _chain(script, "postrouting")
    snat = 'oifname != "nvbr100" ip saddr 10.0.0.0/24 snat to 203.0.113.5'
    assert snat in postrouting
    # a floating IP's holder keeps leaving by its floating IP
    floating = [r for r in postrouting if r.startswith("ip saddr 10.0.0.11")]
    assert floating and postrouting.index(floating[0]) < postrouting.index(snat)
    assert f'{LEAVING} oifname != "nvbr100" accept' in _chain(script, "router-forward")


def test_another_bridge_is_not_the_outside() -> None:
    """Two networks on the host: the routed one's SNAT and accept name every
    Novalet bridge, and the other bridge can't open connections into it."""
    state = _routed("203.0.113.5", floating=[])
    other = NetworkOnHost(uuid="net-2", label="legacy", cidr="10.9.0.0/24", gateway="10.9.0.1",
                          bridge="nvbr200", dhcp_start="10.9.0.2", netmask="255.255.255.0")
    state.networks.append(other)
    script = render_ruleset(state)
    bridges = '{ "nvbr100", "nvbr200" }'
    assert f"oifname != {bridges} ip saddr 10.0.0.0/24 snat to 203.0.113.5" in \
        _chain(script, "postrouting")
    forward = _chain(script, "router-forward")
    assert f"{LEAVING} oifname != {bridges} accept" in forward
    assert 'iifname "nvbr200" oifname "nvbr100" ct state new ct status != dnat counter drop' \
        in forward
    # the legacy network is masqueraded as before, with no check of its own
    assert 'oifname != "nvbr200" ip saddr 10.9.0.0/24 ip daddr != 10.9.0.0/24 masquerade' \
        in _chain(script, "postrouting")
    assert not [r for r in forward if r.startswith('iifname "nvbr200" oifname != ')]


def test_a_remote_metadata_server_stays_reachable() -> None:
    state = _routed(None, metadata_host="192.0.2.7", floating=[])
    assert f"{LEAVING} ip daddr 192.0.2.7 tcp dport 8775 accept" in \
        _chain(render_ruleset(state), "router-forward")


def test_a_bad_gateway_address_is_refused_by_name() -> None:
    with pytest.raises(Exception, match="snat_address"):
        render_ruleset(_routed("not-an-address"))


def test_a_host_of_the_release_before_gets_networks_it_can_parse() -> None:
    state = _routed("203.0.113.5", floating=[FloatingNat("203.0.113.9", "10.0.0.11")])
    (network,) = backported_for_1_0(state)["networks"]
    assert "needs_router" not in network and "snat_address" not in network
    NetworkOnHost(**{k: v for k, v in network.items() if k != "hosts"})  # its parser


@pytest.mark.skipif(shutil.which("nft") is None, reason="needs nft")
def test_nft_accepts_the_rendered_ruleset(real_programs: None) -> None:
    state = _routed("203.0.113.5")
    state.networks.append(NetworkOnHost(
        uuid="net-2", label="legacy", cidr="10.9.0.0/24", gateway="10.9.0.1", bridge="nvbr200",
        dhcp_start="10.9.0.2", netmask="255.255.255.0", needs_router=True))
    check = subprocess.run(["nft", "-c", "-f", "-"], input=render_ruleset(state),
                           capture_output=True, text=True, check=False)
    if check.returncode and "Operation not permitted" in check.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN")
    assert check.returncode == 0, check.stderr


async def test_the_gateway_address_is_held_on_the_public_interface(
        driver: LinuxNetDriver, netlink: FakeNetlink) -> None:
    """The outside side of the router's SNAT: put on (and taken off) public_interface
    like a floating IP, so the outside's replies are answered."""
    netlink.add("eth0", None, up=True)
    await driver.apply(_routed("203.0.113.5"))
    assert IPv4Interface("203.0.113.5/32") in netlink.links_by_name["eth0"].addresses
    await driver.apply(_routed(None))
    assert IPv4Interface("203.0.113.5/32") not in netlink.links_by_name["eth0"].addresses
    assert IPv4Interface("192.168.0.50/32") in netlink.links_by_name["eth0"].addresses
