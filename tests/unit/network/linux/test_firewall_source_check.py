"""The L3 source check (review finding 2): a guest whose port security is off, or
that has allowed address pairs, may send from any address on its own bridge, but
the host neither routes such a packet to another network nor takes it in itself."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from novalet.network.linux.firewall import render_ruleset
from novalet.network.model import (
    FloatingNat,
    HostNetworkState,
    InstanceNet,
    NetworkOnHost,
    PortFilter,
    SecurityRule,
    Vif,
)

NET_A = NetworkOnHost("na", "a", "10.1.0.0/24", "10.1.0.1", "nvbr100", "10.1.0.2",
                      "255.255.255.0", vlan=100)
NET_B = NetworkOnHost("nb", "b", "10.2.0.0/24", "10.2.0.1", "nvbr101", "10.2.0.2",
                      "255.255.255.0", vlan=101, multi_host=True)


def _vif(tap_id: str, net: NetworkOnHost, ip: str, mac: str) -> Vif:
    return Vif(tap_id, mac, net.uuid, net.label, net.bridge, ip, net.cidr, net.gateway)


def spoofing_state() -> HostNetworkState:
    """The review's repro: an open port on network a, a victim on network b whose
    group admits b's own range."""
    attacker = InstanceNet(
        "aaaa", "projA", [_vif("va000000000000", NET_A, "10.1.0.5", "fa:16:3e:00:00:05")],
        [SecurityRule(None, None, None, cidr="0.0.0.0/0", direction="egress")],
        [PortFilter("va000000000000", port_security=False)])
    victim = InstanceNet(
        "bbbb", "projB", [_vif("vb000000000000", NET_B, "10.2.0.5", "fa:16:3e:00:00:06")],
        [SecurityRule(None, None, None, cidr="10.2.0.0/24", direction="ingress")])
    return HostNetworkState("h", [NET_A, NET_B], [attacker, victim], egress_filtered=True,
                            floating=[FloatingNat("192.168.0.50", "10.2.0.5")])


def _chain(script: str, name: str) -> list[str]:
    lines = [line.strip() for line in script.splitlines()]
    start = lines.index(f"chain {name} {{")
    return lines[start + 1:lines.index("}", start)]


def test_routed_traffic_from_a_bridge_must_come_from_its_network() -> None:
    assert _chain(render_ruleset(spoofing_state()), "source-check-forward") == [
        "type filter hook forward priority filter - 10; policy accept;",
        'iifname "nvbr100" oifname != "nvbr100" ip saddr != 10.1.0.0/24 counter drop',
        'iifname "nvbr100" oifname != "nvbr100" meta nfproto ipv6 counter drop',
        'iifname "nvbr101" oifname != "nvbr101" ip saddr != 10.2.0.0/24 counter drop',
        'iifname "nvbr101" oifname != "nvbr101" meta nfproto ipv6 counter drop']


def test_the_host_takes_in_only_its_networks_sources_and_dhcp_discovers() -> None:
    assert _chain(render_ruleset(spoofing_state()), "source-check-input") == [
        "type filter hook input priority filter - 10; policy accept;",
        "ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept",
        'iifname "nvbr100" ip saddr != 10.1.0.0/24 counter drop',
        'iifname "nvbr101" ip saddr != 10.2.0.0/24 counter drop']


def test_the_check_runs_before_the_security_groups() -> None:
    """Lower priority runs first: a spoofed source never reaches the ingress map
    that admits by source; the security groups' hooks are at plain filter."""
    script = render_ruleset(spoofing_state())
    assert _chain(script, "forward")[0] == \
        "type filter hook forward priority filter; policy accept;"


@pytest.mark.skipif(shutil.which("nft") is None, reason="needs nft")
def test_nft_accepts_the_rendered_ruleset(real_programs: None) -> None:
    """`nft -c` parses and checks the script against the kernel without applying it."""
    check = subprocess.run(["nft", "-c", "-f", "-"], input=render_ruleset(spoofing_state()),
                           capture_output=True, text=True, check=False)
    if check.returncode and "Operation not permitted" in check.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN")
    assert check.returncode == 0, check.stderr
