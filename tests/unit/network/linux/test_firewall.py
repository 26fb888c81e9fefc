"""The nftables rendering: the whole ruleset for a known state, rule by rule translations,
and the firewall door's use of `nft -f -`."""

from __future__ import annotations

import dataclasses

import pytest

from novalet.network.linux.firewall import (
    Firewall,
    FirewallFailed,
    render_ruleset,
    render_security_rule,
)
from novalet.network.model import FloatingNat, HostNetworkState, InstanceNet, SecurityRule
from tests.unit.network.linux.conftest import make_state, make_vif
from tests.unit.network.linux.fakes import FakeRunner

# One FlatDHCP network with two instances, one of them with a floating IP; tabs shown as
# four spaces.
GOLDEN = """\
# Novalet's host firewall, rendered from the network state; replaced as a whole.
table ip novalet_nat
delete table ip novalet_nat
table inet novalet_filter
delete table inet novalet_filter
table bridge novalet_bridge
delete table bridge novalet_bridge
table ip novalet_nat {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        iifname "nvbr100" ip daddr 169.254.169.254 tcp dport 80 dnat to 127.0.0.1:8775
        ip daddr 192.168.0.50 dnat to 10.0.0.11
    }
    chain output {
        type nat hook output priority -100; policy accept;
        ip daddr 192.168.0.50 dnat to 10.0.0.11
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "nvbr100" ip saddr 10.0.0.0/24 ip daddr 10.0.0.0/24 ct status dnat snat to 10.0.0.1
        ip saddr 10.0.0.11 ip daddr != 10.0.0.0/24 snat to 192.168.0.50
        oifname != "nvbr100" ip saddr 10.0.0.0/24 ip daddr != 10.0.0.0/24 masquerade
    }
}
table inet novalet_filter {
    chain prerouting {
        type filter hook prerouting priority raw; policy accept;
        iifname "nvbr100" ip daddr 127.0.0.0/8 drop
    }
    chain source-check-forward {
        type filter hook forward priority filter - 10; policy accept;
        iifname "nvbr100" oifname != "nvbr100" ip saddr != 10.0.0.0/24 counter drop
        iifname "nvbr100" oifname != "nvbr100" meta nfproto ipv6 counter drop
    }
    chain source-check-input {
        type filter hook input priority filter - 10; policy accept;
        ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept
        iifname "nvbr100" ip saddr != 10.0.0.0/24 counter drop
    }
    map guests {
        type ifname . ipv4_addr : verdict
        elements = {
            "nvbr100" . 10.0.0.11 : jump instance-aaaa-1,
            "nvbr100" . 10.0.0.12 : jump instance-bbbb-2,
        }
    }
    chain forward {
        type filter hook forward priority filter; policy accept;
        oifname . ip daddr vmap @guests
    }
    chain output {
        type filter hook output priority filter; policy accept;
        oifname . ip daddr vmap @guests
    }
    chain instance-aaaa-1 {
        ct state established,related accept
        ip saddr 10.0.0.1 udp sport 67 udp dport 68 accept
        tcp dport 22 accept
        ip saddr { 10.0.0.12, 10.0.0.13 } tcp dport 8000-8080 accept
        ip saddr 10.0.0.0/24 meta l4proto icmp accept
        counter drop
    }
    chain instance-bbbb-2 {
        ct state established,related accept
        ip saddr 10.0.0.1 udp sport 67 udp dport 68 accept
        counter drop
    }
}
table bridge novalet_bridge {
    map ports {
        type ifname : verdict
        elements = {
            "tap00000001-11" : jump from-tap00000001-11,
            "tap00000002-11" : jump from-tap00000002-11,
        }
    }
    set taps {
        type ifname
        elements = {
            "tap00000001-11",
            "tap00000002-11",
        }
    }
    chain prerouting {
        type filter hook prerouting priority filter; policy accept;
        iifname vmap @ports
    }
    chain forward {
        type filter hook forward priority filter; policy accept;
        oifname @taps ether type != { ip, arp } drop
    }
    chain output {
        type filter hook output priority filter; policy accept;
        oifname @taps ether type != { ip, arp } drop
    }
    chain from-tap00000001-11 {
        ether saddr != 52:54:00:00:00:01 drop
        arp saddr ether 52:54:00:00:00:01 arp saddr ip { 0.0.0.0, 10.0.0.11 } accept
        ip saddr 10.0.0.11 accept
        ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept
        counter drop
    }
    chain from-tap00000002-11 {
        ether saddr != 52:54:00:00:00:02 drop
        arp saddr ether 52:54:00:00:00:02 arp saddr ip { 0.0.0.0, 10.0.0.12 } accept
        ip saddr 10.0.0.12 accept
        ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept
        counter drop
    }
}
"""

DELETE_ONLY = """\
# Novalet's host firewall, rendered from the network state; replaced as a whole.
table ip novalet_nat
delete table ip novalet_nat
table inet novalet_filter
delete table inet novalet_filter
table bridge novalet_bridge
delete table bridge novalet_bridge
"""


def test_whole_ruleset_for_a_known_state() -> None:
    assert render_ruleset(make_state()).replace("\t", "    ") == GOLDEN


def test_rendering_does_not_depend_on_the_order_of_the_state() -> None:
    state = make_state()
    shuffled = dataclasses.replace(state, instances=state.instances[::-1])
    assert render_ruleset(shuffled) == render_ruleset(state)


def test_an_empty_state_only_deletes_novalets_tables() -> None:
    assert render_ruleset(HostNetworkState(host="h")) == DELETE_ONLY


def test_every_table_is_deleted_before_it_is_recreated() -> None:
    script = render_ruleset(make_state())
    for table in ("ip novalet_nat", "inet novalet_filter", "bridge novalet_bridge"):
        # declaring first makes the delete succeed when the table is absent
        assert script.index(f"table {table}\ndelete table {table}\n") < script.index(
            f"table {table} {{")


def test_networks_without_instances_get_nat_and_the_loopback_guard_only() -> None:
    script = render_ruleset(make_state(instances=[], floating=[]))
    assert "table ip novalet_nat {" in script
    assert 'iifname "nvbr100" ip daddr 127.0.0.0/8 drop' in script
    assert "map guests" not in script and "chain forward" not in script
    assert "table bridge novalet_bridge {" not in script


def test_quarantined_taps_are_dropped_entirely() -> None:
    script = render_ruleset(make_state(), quarantined=["tapnew", "tap00000001-11"])
    assert '\t\t\t"tapnew" : drop,\n' in script
    assert '"tap00000001-11" : drop' not in script   # in the state: filtered, not quarantined
    only = render_ruleset(HostNetworkState(host="h"), quarantined=["tapnew"])
    assert "table bridge novalet_bridge {" in only and "novalet_filter {" not in only


def test_a_metadata_server_elsewhere_sees_the_guest_address() -> None:
    script = render_ruleset(make_state(metadata_host="192.168.0.5", metadata_port=8775))
    assert "dnat to 192.168.0.5:8775" in script
    exempt = "ip saddr 10.0.0.0/24 ip daddr 192.168.0.5 tcp dport 8775 accept"
    assert script.index(exempt) < script.index("masquerade")
    assert "tcp dport 8775 accept" not in render_ruleset(make_state())


def test_floating_snat_comes_before_masquerade_and_hairpin_before_both() -> None:
    script = render_ruleset(make_state())
    assert (script.index("ct status dnat snat to 10.0.0.1")
            < script.index("snat to 192.168.0.50") < script.index("masquerade"))


def test_a_floating_ip_outside_every_network_still_gets_nat() -> None:
    script = render_ruleset(make_state(floating=[FloatingNat("192.168.0.60", "172.16.0.5")]))
    assert "ip saddr 172.16.0.5 snat to 192.168.0.60" in script
    assert "ip daddr 192.168.0.60 dnat to 172.16.0.5" in script


def test_an_instance_on_two_networks_takes_dhcp_from_both_gateways() -> None:
    second = make_vif(3, bridge="nvbr200", cidr="10.0.1.0/24", gateway="10.0.1.1",
                      network_id="net-2")
    state = make_state()
    net2 = dataclasses.replace(state.networks[0], uuid="net-2", cidr="10.0.1.0/24",
                               gateway="10.0.1.1", bridge="nvbr200", dhcp_start="10.0.1.2", hosts={})
    state.networks.append(net2)
    state.instances[0].vifs.append(second)
    script = render_ruleset(state)
    assert "ip saddr { 10.0.0.1, 10.0.1.1 } udp sport 67 udp dport 68 accept" in script
    assert '"nvbr200" . 10.0.1.13 : jump instance-aaaa-1,' in script
    assert 'iifname { "nvbr100", "nvbr200" } ip daddr 169.254.169.254' in script


@pytest.mark.parametrize(("rule", "expected"), [
    (SecurityRule("tcp", 22, 22, cidr="0.0.0.0/0"), "tcp dport 22 accept"),
    (SecurityRule("udp", 53, 54, cidr="10.1.0.0/16"), "ip saddr 10.1.0.0/16 udp dport 53-54 accept"),
    (SecurityRule("TCP", 1, 65535, cidr="10.1.2.3/32"), "ip saddr 10.1.2.3 meta l4proto tcp accept"),
    (SecurityRule("tcp", None, None, cidr="10.1.2.0/24"),
     "ip saddr 10.1.2.0/24 meta l4proto tcp accept"),
    (SecurityRule("icmp", 8, -1, cidr="0.0.0.0/0"), "icmp type 8 accept"),
    (SecurityRule("icmp", 3, 4, cidr="0.0.0.0/0"), "icmp type 3 icmp code 4 accept"),
    (SecurityRule("icmp", -1, -1, cidr="0.0.0.0/0"), "meta l4proto icmp accept"),
    (SecurityRule(None, None, None, cidr="10.9.0.0/16"), "ip saddr 10.9.0.0/16 accept"),
    (SecurityRule("47", None, None, cidr="0.0.0.0/0"), "meta l4proto 47 accept"),
    (SecurityRule("tcp", 80, 80, remote_ips=["10.0.0.7"]), "ip saddr 10.0.0.7 tcp dport 80 accept"),
    (SecurityRule("tcp", 80, 80, remote_ips=["10.0.0.9", "10.0.0.7", "fe80::1"]),
     "ip saddr { 10.0.0.7, 10.0.0.9 } tcp dport 80 accept"),
    # a source group without members admits nobody; IPv6 and nonsense admit nobody here
    (SecurityRule("tcp", 80, 80, remote_ips=[]), None),
    (SecurityRule("tcp", 80, 80, cidr="::/0"), None),
    (SecurityRule("tcp", 80, 80, cidr="not-a-cidr"), None),
    (SecurityRule("sctp-ish", 80, 80, cidr="0.0.0.0/0"), None),
])
def test_security_rule(rule: SecurityRule, expected: str | None) -> None:
    assert render_security_rule(rule) == expected


def test_duplicate_rules_render_once() -> None:
    vif = make_vif(1)
    rule = SecurityRule("tcp", 22, 22, cidr="0.0.0.0/0")
    state = make_state(instances=[InstanceNet("i", "p", [vif], [rule, rule])])
    assert render_ruleset(state).count("tcp dport 22 accept") == 1


@pytest.mark.parametrize("change", [
    {"metadata_host": "metadata.example"},
    {"floating": [FloatingNat("not-an-ip", "10.0.0.11")]},
])
def test_bad_addresses_are_refused_by_name(change: dict[str, object]) -> None:
    with pytest.raises(FirewallFailed, match="is not an IPv4 address"):
        render_ruleset(make_state(**change))


@pytest.mark.parametrize("mac", ["nonsense", "52:54:00:00:00:01\n", "53:54:00:00:00:01"])
def test_a_vif_with_a_bad_mac_is_dropped_not_written(mac: str) -> None:
    vif = dataclasses.replace(make_vif(1), address=mac)
    script = render_ruleset(make_state(instances=[InstanceNet("i", "p", [vif])]))
    assert mac not in script
    assert f'"{vif.tap}" : drop,' in script


async def test_the_door_pipes_the_script_into_nft(runner: FakeRunner) -> None:
    firewall = Firewall(runner)
    script = await firewall.apply(make_state())
    await firewall.clear()
    assert runner.calls == [["nft", "-f", "-"], ["nft", "-f", "-"]]
    assert runner.inputs == [script, DELETE_ONLY]
