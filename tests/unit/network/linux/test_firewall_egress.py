"""Egress rules in the nftables rendering (HostNetworkState 1.1, `egress_filtered`):
what an instance may send is what its egress rules allow, with conntrack for the
replies both ways, and DHCP and the metadata service always; ingress unchanged."""

from __future__ import annotations

import pytest

from novalet.network.linux.firewall import render_ruleset, render_security_rule
from novalet.network.model import HostNetworkState, InstanceNet, SecurityRule
from tests.unit.network.linux.conftest import make_state, make_vif

# The filter table for one instance in a group with an ingress SSH rule, egress to
# one CIDR (HTTPS) and to the members of a group (DNS), and Neutron's IPv6 egress
# rule (not rendered: guests have IPv4 only); tabs shown as four spaces.
FILTER_TABLE = """\
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
    map egress {
        type ifname . ipv4_addr : verdict
        elements = {
            "nvbr100" . 10.0.0.11 : jump egress-aaaa-1,
        }
    }
    map guests {
        type ifname . ipv4_addr : verdict
        elements = {
            "nvbr100" . 10.0.0.11 : jump instance-aaaa-1,
        }
    }
    chain forward {
        type filter hook forward priority filter; policy accept;
        iifname . ip saddr vmap @egress
        oifname . ip daddr vmap @guests
    }
    chain input {
        type filter hook input priority filter; policy accept;
        iifname . ip saddr vmap @egress
    }
    chain output {
        type filter hook output priority filter; policy accept;
        oifname . ip daddr vmap @guests
    }
    chain instance-aaaa-1 {
        ct state established,related accept
        ip saddr 10.0.0.1 udp sport 67 udp dport 68 accept
        tcp dport 22 accept
        counter drop
    }
    chain egress-aaaa-1 {
        ct state established,related return
        udp sport 68 udp dport 67 return
        meta l4proto tcp ct original ip daddr 169.254.169.254 ct original proto-dst 80 return
        ip daddr 192.0.2.0/24 tcp dport 443 return
        ip daddr { 10.0.0.7, 10.0.0.9 } udp dport 53 return
        counter drop
    }
}
"""

RULES = [
    SecurityRule("tcp", 22, 22, cidr="0.0.0.0/0"),
    SecurityRule("tcp", 443, 443, cidr="192.0.2.0/24", direction="egress"),
    SecurityRule("udp", 53, 53, remote_ips=["10.0.0.9", "10.0.0.7"], direction="egress"),
    SecurityRule(None, None, None, cidr="::/0", direction="egress", ethertype="IPv6"),
]


def filtered_state(rules: list[SecurityRule]) -> HostNetworkState:
    return make_state(instances=[InstanceNet("aaaa-1", "project-1", [make_vif(1)], rules)],
                      floating=[], egress_filtered=True)


def filter_table(script: str) -> str:
    start = script.index("table inet novalet_filter {")
    end = script.index("\n}\n", start) + 3
    return script[start:end].replace("\t", "    ")


def test_egress_rules_render_as_their_own_chain_ahead_of_ingress() -> None:
    assert filter_table(render_ruleset(filtered_state(RULES))) == FILTER_TABLE


def test_without_egress_rules_only_replies_dhcp_and_metadata_go_out() -> None:
    ingress_only = [SecurityRule("tcp", 22, 22, cidr="0.0.0.0/0")]
    table = filter_table(render_ruleset(filtered_state(ingress_only)))
    chain = table[table.index("chain egress-aaaa-1"):]
    assert chain.splitlines()[1:6] == [
        "        ct state established,related return",
        "        udp sport 68 udp dport 67 return",
        "        meta l4proto tcp ct original ip daddr 169.254.169.254 ct original "
        "proto-dst 80 return",
        "        counter drop",
        "    }"]


def test_egress_anywhere_lets_everything_out() -> None:
    anywhere = [SecurityRule(None, None, None, cidr="0.0.0.0/0", direction="egress")]
    table = filter_table(render_ruleset(filtered_state(anywhere)))
    assert "        return\n        counter drop" in table


def test_a_state_from_before_egress_rules_leaves_egress_open() -> None:
    """HostNetworkState 1.0 (a conductor of the previous release): no egress chains,
    as that release rendered it, even for rules that say egress."""
    state = filtered_state(RULES)
    state.egress_filtered = False
    table = filter_table(render_ruleset(state))
    assert "egress" not in table and "chain input" not in table
    assert "tcp dport 22 accept" in table
    assert "443" not in table  # an egress rule is never rendered as ingress


@pytest.mark.parametrize(("rule", "expected"), [
    (SecurityRule("tcp", 80, 80, cidr="10.1.0.0/16", direction="egress"),
     "ip daddr 10.1.0.0/16 tcp dport 80 return"),
    (SecurityRule("6", 80, 81, cidr="10.1.2.3/32", direction="egress"),
     "ip daddr 10.1.2.3 tcp dport 80-81 return"),
    (SecurityRule("icmp", 8, 0, cidr="0.0.0.0/0", direction="egress"),
     "icmp type 8 icmp code 0 return"),
    (SecurityRule("icmp", None, None, cidr="0.0.0.0/0", direction="egress"),
     "meta l4proto icmp return"),
    (SecurityRule("sctp", 9, 9, cidr="0.0.0.0/0", direction="egress"), "sctp dport 9 return"),
    (SecurityRule("gre", None, None, cidr="0.0.0.0/0", direction="egress"),
     "meta l4proto 47 return"),
    (SecurityRule("132", None, None, cidr="0.0.0.0/0", direction="egress"),
     "meta l4proto sctp return"),
    (SecurityRule(None, None, None, remote_ips=["10.0.0.5"], direction="egress"),
     "ip daddr 10.0.0.5 return"),
    # IPv6 rules are stored and shown, not rendered: guests have no IPv6 address
    (SecurityRule(None, None, None, cidr="::/0", direction="egress", ethertype="IPv6"), None),
    (SecurityRule(None, None, None, remote_ips=["10.0.0.5"], ethertype="IPv6"), None),
    (SecurityRule("tcp", 80, 80, remote_ips=[], direction="egress"), None),
    # stored protocols int() refuses (review finding 9): skipped, never a crash
    (SecurityRule("\u00b2", None, None, cidr="0.0.0.0/0", direction="egress"), None),
    (SecurityRule("9" * 5000, None, None, cidr="0.0.0.0/0", direction="egress"), None),
    (SecurityRule("0017", 53, 53, cidr="0.0.0.0/0", direction="egress"), "udp dport 53 return"),
])
def test_egress_rule(rule: SecurityRule, expected: str | None) -> None:
    assert render_security_rule(rule, "return") == expected


def test_an_ingress_rule_of_a_protocol_by_name() -> None:
    assert render_security_rule(SecurityRule("udplite", 5, 6, cidr="0.0.0.0/0")) == \
        "udplite dport 5-6 accept"
