"""Port settings in the nftables rendering (InstanceNet.port_filters): port security
off (no anti-spoofing, no security groups for that NIC), administratively down
(nothing in or out) and allowed address pairs (sent from by their MAC, and covered
by the port's groups); and how the network state builds and backports them."""

from __future__ import annotations

from novalet.db.models import VirtualInterface
from novalet.db.network import InterfaceRow
from novalet.network.linux.firewall import render_ruleset
from novalet.network.model import HostNetworkState, InstanceNet, PortFilter, SecurityRule
from novalet.network.state import _port_filter, backported_for_1_0
from tests.unit.network.linux.conftest import make_state, make_vif

VIF1, VIF2 = make_vif(1), make_vif(2)
SSH = SecurityRule("tcp", 22, 22, cidr="0.0.0.0/0")


def _state(first: list[PortFilter], second: list[PortFilter] | None = None
           ) -> HostNetworkState:
    return make_state(egress_filtered=True, floating=[], instances=[
        InstanceNet("aaaa-1", "p", [VIF1], [SSH], first),
        InstanceNet("bbbb-2", "p", [VIF2], [SSH], second or [])])


def _lines(script: str) -> list[str]:
    return [line.strip() for line in script.splitlines()]


def test_defaults_render_as_before() -> None:
    plain = make_state(egress_filtered=True, floating=[], instances=[
        InstanceNet("aaaa-1", "p", [VIF1], [SSH]), InstanceNet("bbbb-2", "p", [VIF2], [SSH])])
    assert render_ruleset(_state([PortFilter(VIF1.id)])) == render_ruleset(plain)


def test_port_security_off_passes_the_nic_unchecked() -> None:
    lines = _lines(render_ruleset(_state([PortFilter(VIF1.id, port_security=False)])))
    assert f'"{VIF1.tap}" : accept,' in lines
    assert f"chain from-{VIF1.tap} {{" not in lines
    # no security group chain is jumped to for its address, either way
    assert not [line for line in lines if line.startswith(f'"nvbr100" . {VIF1.fixed_ip} :')]
    # the other instance is filtered as before
    assert f'"{VIF2.tap}" : jump from-{VIF2.tap},' in lines
    assert f'"nvbr100" . {VIF2.fixed_ip} : jump instance-bbbb-2,' in lines
    assert f'"nvbr100" . {VIF2.fixed_ip} : jump egress-bbbb-2,' in lines


def test_a_down_port_passes_nothing_either_way() -> None:
    script = render_ruleset(_state([PortFilter(VIF1.id, admin_state_up=False)]))
    lines = _lines(script)
    assert f'"{VIF1.tap}" : drop,' in lines
    assert f"chain from-{VIF1.tap} {{" not in lines
    assert "set down {" in lines and f'"{VIF1.tap}",' in lines
    assert lines.count("oifname @down drop") == 2  # forward and output


def test_allowed_address_pairs_may_send_and_are_guarded_by_the_groups() -> None:
    pairs = [["10.0.0.100", "fa:16:3e:00:00:aa"], ["10.0.0.101", VIF1.address]]
    lines = _lines(render_ruleset(_state([PortFilter(VIF1.id, address_pairs=pairs)])))
    start = lines.index(f"chain from-{VIF1.tap} {{")
    chain = lines[start + 1:lines.index("}", start)]
    assert chain[:5] == [
        "ether saddr fa:16:3e:00:00:aa arp saddr ether fa:16:3e:00:00:aa "
        "arp saddr ip 10.0.0.100 accept",
        "ether saddr fa:16:3e:00:00:aa ip saddr 10.0.0.100 accept",
        f"ether saddr {VIF1.address} arp saddr ether {VIF1.address} arp saddr ip 10.0.0.101 "
        "accept",
        f"ether saddr {VIF1.address} ip saddr 10.0.0.101 accept",
        f"ether saddr != {VIF1.address} drop"]
    for address in ("10.0.0.100", "10.0.0.101"):
        assert f'"nvbr100" . {address} : jump instance-aaaa-1,' in lines
        assert f'"nvbr100" . {address} : jump egress-aaaa-1,' in lines


def test_a_shared_pair_address_is_matched_once_and_a_fixed_ip_wins() -> None:
    """Two ports with one virtual address (VRRP): one map element, the first
    instance's; a pair naming another guest's fixed IP doesn't take it over."""
    shared = [["10.0.0.100", VIF1.address], [VIF2.fixed_ip, VIF1.address]]
    state = _state([PortFilter(VIF1.id, address_pairs=shared)],
                   [PortFilter(VIF2.id, address_pairs=[["10.0.0.100", VIF2.address]])])
    lines = _lines(render_ruleset(state))
    vip = [line for line in lines if line.startswith('"nvbr100" . 10.0.0.100 :')]
    assert vip == ['"nvbr100" . 10.0.0.100 : jump egress-aaaa-1,',
                   '"nvbr100" . 10.0.0.100 : jump instance-aaaa-1,']
    fixed = [line for line in lines if line.startswith(f'"nvbr100" . {VIF2.fixed_ip} :')]
    assert fixed == [f'"nvbr100" . {VIF2.fixed_ip} : jump egress-bbbb-2,',
                     f'"nvbr100" . {VIF2.fixed_ip} : jump instance-bbbb-2,']


def test_a_bad_pair_is_skipped_not_fatal() -> None:
    state = _state([PortFilter(VIF1.id, address_pairs=[["not-an-ip", VIF1.address]])])
    assert "not-an-ip" not in render_ruleset(state)


def _row(**columns: object) -> InterfaceRow:
    vif = VirtualInterface(uuid="port-1", address="fa:16:3e:00:00:01", **columns)
    return InterfaceRow(vif=vif, network=None, fixed_ip=None)  # type: ignore[arg-type]


def test_the_state_lists_only_ports_off_the_defaults() -> None:
    assert _port_filter(_row(port_security_enabled=True, admin_state_up=True)) is None
    assert _port_filter(_row(port_security_enabled=False, admin_state_up=True)) == \
        PortFilter("port-1", port_security=False)
    # a pair stored without a MAC (the port had none yet) has the port's
    found = _port_filter(_row(port_security_enabled=True, admin_state_up=True,
                              allowed_address_pairs=[{"ip_address": "10.0.0.9",
                                                      "mac_address": ""}]))
    assert found == PortFilter("port-1", address_pairs=[["10.0.0.9", "fa:16:3e:00:00:01"]])


def test_a_network_service_of_the_release_before_gets_no_port_filters() -> None:
    data = backported_for_1_0(_state([PortFilter(VIF1.id, port_security=False)]))
    assert all("port_filters" not in instance for instance in data["instances"])
    assert data["_version"] == "1.0"


def test_a_stored_pair_with_a_newline_or_multicast_mac_is_skipped() -> None:
    """Values stored before the API checked them strictly never reach the script."""
    bad = [["10.0.0.100", "fa:16:3e:00:00:aa\nip saddr 0.0.0.0/0 accept"],
           ["10.0.0.101\n", VIF1.address], ["10.0.0.102", "01:00:5e:00:00:01"]]
    script = render_ruleset(_state([PortFilter(VIF1.id, address_pairs=bad)]))
    for address in ("10.0.0.100", "10.0.0.101", "10.0.0.102", "0.0.0.0/0"):
        assert address not in script
