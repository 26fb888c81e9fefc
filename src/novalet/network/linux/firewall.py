"""The host firewall for guests, as nftables: rendered whole from the state, replaced atomically.

Three tables, all Novalet's own; nothing else in the ruleset is read or touched:

- `ip novalet_nat`: outbound masquerade for each network, DNAT of the metadata
  address (169.254.169.254:80) arriving on a Novalet bridge, and floating IPs
  (DNAT floating -> fixed in prerouting and output, so the host itself reaches
  them; SNAT fixed -> floating for what the guest sends out).
- `inet novalet_filter`: nothing entering by a Novalet bridge may be addressed
  to 127.0.0.0/8 (the bridges route it, for a loopback metadata server), nor
  come from outside the bridge's network when it is routed or enters the host
  (a port without security, or an allowed address pair, spoofs only on its own
  wire; no IPv6 is routed out of a bridge), and security groups, stateful. Ingress to a guest is
  matched on (bridge, fixed IP): a map sends packets leaving by a bridge for a
  guest's fixed address to the instance's chain (established/related, DHCP
  replies from the host, the instance's rules, then drop). Bridged traffic
  between guests reaches these hooks through br_netfilter, which the driver
  turns on; routed traffic (floating IPs, other networks, the host) always does.
  Matching the destination address is sound because the bridge table below
  guarantees that only a guest's own tap can use its address.
- `bridge novalet_bridge`: stateless layer 2 rules per tap. Anti-spoofing on
  what a guest sends (its own MAC, its own IP or 0.0.0.0 for a DHCP discover,
  ARP only for itself, no IPv6 or other protocols);
  only IPv4 and ARP reach a guest; a tap on a bridge that is not (yet) in the
  state is quarantined.
- Per port (InstanceNet.port_filters, the network API's ports): port security
  off passes the tap's traffic unchecked here and puts its address in neither
  map above (no security groups); a port that is administratively down is
  dropped both ways; allowed address pairs may send from their (address, MAC)
  and their addresses join the maps, so the port's groups guard them too.

Why not a `bridge` table with `ct state` for the security groups: that needs
the kernel's nf_conntrack_bridge, which hosts (this one included) may lack;
the `inet` table with br_netfilter is what nova-network did with iptables.

Every change is the whole ruleset in one `nft -f -` transaction: each of our
tables is declared, deleted and recreated, so there is no moment with half a
ruleset, and an empty state deletes the tables.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network

from novalet.network.linux.commands import CommandRunner
from novalet.network.linux.errors import LinuxNetError
from novalet.network.model import HostNetworkState, InstanceNet, PortFilter, SecurityRule, Vif
from novalet.network.neutron_rule_checks import PROTOCOL_NUMBERS, decimal_protocol

LOG = logging.getLogger(__name__)

NAT_TABLE = "ip novalet_nat"
FILTER_TABLE = "inet novalet_filter"
BRIDGE_TABLE = "bridge novalet_bridge"
TABLES = (NAT_TABLE, FILTER_TABLE, BRIDGE_TABLE)

METADATA_ADDRESS = "169.254.169.254"
METADATA_PORT = 80


class FirewallFailed(LinuxNetError):
    msg_fmt = "Could not render the firewall: %(reason)s"


@dataclass(frozen=True)
class GuestPort:
    """One vif as the firewall sees it."""

    tap: str
    mac: str
    ip: str
    bridge: str
    open: bool = False  # port security off: no anti-spoofing
    down: bool = False  # administratively down: nothing in or out
    pairs: tuple[tuple[str, str], ...] = ()  # allowed (address, MAC) pairs


def render_ruleset(state: HostNetworkState, quarantined: Iterable[str] = ()) -> str:
    """The nft script that makes Novalet's tables match `state`.

    `quarantined` names taps that are plugged into a bridge but belong to no
    instance of the state: everything they send is dropped.
    """
    lines = ["# Novalet's host firewall, rendered from the network state; replaced as a whole."]
    for table in TABLES:
        lines += [f"table {table}", f"delete table {table}"]
    if state.networks:
        lines += _nat_table(state)
    if state.networks:
        lines += _filter_table(state)
    guests = _guest_ports(state)
    quarantine = sorted(set(quarantined) - {g.tap for g in guests})
    if guests or quarantine:
        lines += _bridge_table(guests, quarantine)
    return "\n".join(lines) + "\n"


def _nat_table(state: HostNetworkState) -> list[str]:
    networks = sorted(state.networks, key=lambda n: n.bridge)
    metadata = _ipv4(state.metadata_host, "metadata_host")
    cidrs = [_ipv4_network(n.cidr, f"cidr of network {n.label}") for n in networks]
    prerouting = [f"iifname {_name_set(n.bridge for n in networks)} ip daddr {METADATA_ADDRESS} "
                  f"tcp dport {METADATA_PORT} dnat to {metadata}:{state.metadata_port}"]
    output = []
    # a guest reaching a guest of its own network by a floating IP: the answer must
    # come back through the host, so the host (the gateway) becomes the source
    hairpin = [f'oifname "{n.bridge}" ip saddr {cidr} ip daddr {cidr} ct status dnat '
               f"snat to {_ipv4(n.gateway, 'gateway')}" for n, cidr in zip(networks, cidrs, strict=True)]
    floating_snat = []
    for floating in sorted(state.floating, key=lambda f: int(_ipv4(f.floating_ip, "floating_ip"))):
        public = _ipv4(floating.floating_ip, "floating_ip")
        fixed = _ipv4(floating.fixed_ip, "fixed_ip")
        prerouting.append(f"ip daddr {public} dnat to {fixed}")
        output.append(f"ip daddr {public} dnat to {fixed}")
        home = next((cidr for cidr in cidrs if fixed in cidr), None)
        not_home = f" ip daddr != {home}" if home else ""
        floating_snat.append(f"ip saddr {fixed}{not_home} snat to {public}")
    outbound = []
    bridges = _name_set(n.bridge for n in networks)
    for network, cidr in zip(networks, cidrs, strict=True):
        if not metadata.is_loopback:
            # a metadata server on another host must see the guest's own address
            outbound.append(f"ip saddr {cidr} ip daddr {metadata} tcp dport "
                            f"{state.metadata_port} accept")
        if not network.needs_router:  # the nova-network face's: the host's address
            outbound.append(f'oifname != "{network.bridge}" ip saddr {cidr} '
                            f"ip daddr != {cidr} masquerade")
        elif network.snat_address:  # through its router: the gateway's address
            gateway = _ipv4(network.snat_address, "snat_address")
            outbound.append(f"oifname != {bridges} ip saddr {cidr} snat to {gateway}")
    return [
        f"table {NAT_TABLE} {{",
        *_chain("prerouting", "type nat hook prerouting priority dstnat; policy accept;",
                prerouting),
        *_chain("output", "type nat hook output priority -100; policy accept;", output),
        *_chain("postrouting", "type nat hook postrouting priority srcnat; policy accept;",
                hairpin + floating_snat + outbound),
        "}",
    ]


def _filter_table(state: HostNetworkState) -> list[str]:
    gateways = {n.bridge: n.gateway for n in state.networks if n.dhcp}
    bridges = _name_set(n.bridge for n in state.networks)
    # route_localnet (for a loopback metadata server) would otherwise let anything on a
    # bridge (a guest, a host behind a VLAN or flat uplink) reach the host's 127/8;
    # raw priority sees the address before the metadata DNAT makes it loopback
    lines = [f"table {FILTER_TABLE} {{",
             *_chain("prerouting", "type filter hook prerouting priority raw; policy accept;",
                     [f"iifname {bridges} ip daddr 127.0.0.0/8 drop"]),
             *_source_checks(state), *_router_checks(state)]
    elements: list[str] = []
    egress: list[str] = []
    chains: list[str] = []
    filtered = _filtered_addresses(state)
    for instance in sorted(state.instances, key=lambda i: i.instance_uuid):
        if not instance.vifs:
            continue
        chain = f"instance-{instance.instance_uuid}"
        keys = filtered.get(instance.instance_uuid, [])
        elements += [f'"{bridge}" . {address} : jump {chain}' for bridge, address in keys]
        rules = ["ct state established,related accept"]
        dhcp_servers = sorted({gateways[v.bridge] for v in instance.vifs if v.bridge in gateways},
                              key=_ip_sort)
        if dhcp_servers:
            rules.append(f"ip saddr {_addr_set(dhcp_servers)} udp sport 67 udp dport 68 accept")
        for rule in instance.rules:
            line = render_security_rule(rule) if rule.direction == "ingress" else None
            if line is not None and line not in rules:
                rules.append(line)
        rules.append("counter drop")
        chains += _chain(chain, None, rules)
        if state.egress_filtered:
            egress += [f'"{bridge}" . {address} : jump egress-{instance.instance_uuid}'
                       for bridge, address in keys]
            chains += _chain(f"egress-{instance.instance_uuid}", None, _egress_rules(instance))
    if elements:
        # egress first: its chains end allowed traffic in `return`, so a packet
        # from one guest to another is checked by both guests' groups
        from_guests = ["iifname . ip saddr vmap @egress"] if egress else []
        lines += [
            *(_map("egress", "ifname . ipv4_addr : verdict", egress) if egress else []),
            *_map("guests", "ifname . ipv4_addr : verdict", elements),
            *_chain("forward", "type filter hook forward priority filter; policy accept;",
                    [*from_guests, "oifname . ip daddr vmap @guests"]),
            *(_chain("input", "type filter hook input priority filter; policy accept;",
                     from_guests) if egress else []),
            *_chain("output", "type filter hook output priority filter; policy accept;",
                    ["oifname . ip daddr vmap @guests"]),
            *chains,
        ]
    return [*lines, "}"]


def _source_checks(state: HostNetworkState) -> list[str]:
    """Nothing enters the host or is routed out of a bridge with a source outside
    that bridge's network: a guest whose port security is off (or an allowed
    address pair) may send from any address on its own wire, but must not reach
    other networks (whose security groups admit by source) or the host with
    another project's addresses. Bridged traffic staying on its bridge is not
    routed and not checked here. A DHCP client has no address yet (0.0.0.0)."""
    networks = sorted(state.networks, key=lambda n: n.bridge)
    checks = [(n.bridge, _ipv4_network(n.cidr, f"cidr of network {n.label}")) for n in networks]
    # guests have no IPv6 here: a port without security could otherwise have the
    # host route IPv6 of any source (the bridge table drops it only for the others)
    forward = [rule for bridge, cidr in checks for rule in (
        f'iifname "{bridge}" oifname != "{bridge}" ip saddr != {cidr} counter drop',
        f'iifname "{bridge}" oifname != "{bridge}" meta nfproto ipv6 counter drop')]
    into_host = [f'iifname "{bridge}" ip saddr != {cidr} counter drop' for bridge, cidr in checks]
    dhcp = "ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept"
    # ahead of the security groups' chains (priority filter): a spoofed packet
    # never reaches a guest's ingress map
    return [*_chain("source-check-forward", "type filter hook forward priority filter - 10; "
                    "policy accept;", forward),
            *_chain("source-check-input", "type filter hook input priority filter - 10; "
                    "policy accept;", [dhcp, *into_host])]


def _router_checks(state: HostNetworkState) -> list[str]:
    """A network made through the network API (needs_router) is routed off its
    bridge only as Neutron's router would: to the outside when its router SNATs it
    (the NAT table gives the gateway's address), replies to what reached it by a
    floating IP (DNATed), what its floating-IP holders send (SNATed to their
    floating IP) and a remote metadata server; nothing else leaves, not even to
    another Novalet bridge, and no other bridge opens a connection into it. The
    nova-network face's networks are not checked here (the host routes them)."""
    routed = sorted((n for n in state.networks if n.needs_router), key=lambda n: n.bridge)
    if not routed:
        return []
    bridges = _name_set(n.bridge for n in state.networks)
    floating = sorted({str(_ipv4(f.fixed_ip, "fixed_ip")) for f in state.floating},
                      key=_ip_sort)
    metadata = _ipv4(state.metadata_host, "metadata_host")
    rules = []
    for network in routed:
        leaving = f'iifname "{network.bridge}" oifname != "{network.bridge}"'
        rules.append(f"{leaving} ct status dnat accept")
        if floating:
            rules.append(f"{leaving} ip saddr {_addr_set(floating)} accept")
        if not metadata.is_loopback:
            rules.append(f"{leaving} ip daddr {metadata} tcp dport {state.metadata_port} "
                         "accept")
        if network.snat_address:
            rules.append(f"{leaving} oifname != {bridges} accept")
        rules.append(f"{leaving} counter drop")
        others = sorted({n.bridge for n in state.networks} - {network.bridge})
        if others:
            rules.append(f'iifname {_name_set(others)} oifname "{network.bridge}" '
                         "ct state new ct status != dnat counter drop")
    return _chain("router-forward", "type filter hook forward priority filter - 5; "
                  "policy accept;", rules)


def _filtered_addresses(state: HostNetworkState) -> dict[str, list[tuple[str, str]]]:
    """instance -> the (bridge, address) pairs its security groups apply to: the
    fixed IPs of its NICs with port security on, then their allowed address pairs'
    addresses (Neutron applies a port's groups to those too). An address is matched
    once per bridge: a fixed IP before any pair, then the first instance's pair
    (two ports sharing a virtual address, as VRRP does, share its ingress chain)."""
    instances = sorted(state.instances, key=lambda i: i.instance_uuid)
    result: dict[str, list[tuple[str, str]]] = {i.instance_uuid: [] for i in instances}
    seen: set[tuple[str, str]] = set()

    def add(instance: InstanceNet, bridge: str, address: str) -> None:
        if (bridge, address) not in seen:
            seen.add((bridge, address))
            result[instance.instance_uuid].append((bridge, address))

    checked = [(i, v) for i in instances for v in sorted(i.vifs, key=lambda v: v.tap)
               if i.port_filter(v.id).port_security]
    for instance, vif in checked:
        add(instance, vif.bridge, str(_ipv4(vif.fixed_ip, "fixed_ip")))
    for instance, vif in checked:
        for address, _ in _pairs(instance.port_filter(vif.id)):
            add(instance, vif.bridge, address)
    return result


def _pairs(port: PortFilter) -> list[tuple[str, str]]:
    """The port's allowed (address, MAC) pairs that can be rendered (the API lets in
    only single IPv4 addresses and unicast MACs; anything else is skipped)."""
    pairs = []
    for pair in port.address_pairs:
        address = _maybe_ipv4(pair[0]) if len(pair) == 2 else None
        mac = _unicast_mac(pair[1]) if address is not None else None
        if address is None or mac is None:
            LOG.warning("Skipping allowed address pair %r of port %s", pair, port.vif_id)
            continue
        pairs.append((str(address), mac))
    return pairs


def _egress_rules(instance: InstanceNet) -> list[str]:
    """What an instance may send: replies and what its egress rules allow, and
    always DHCP and the metadata service, as Neutron allows them. Allowed traffic
    returns to the base chain (for the receiving guest's ingress check)."""
    rules = ["ct state established,related return",
             "udp sport 68 udp dport 67 return",
             f"meta l4proto tcp ct original ip daddr {METADATA_ADDRESS} "
             f"ct original proto-dst {METADATA_PORT} return"]
    for rule in instance.rules:
        line = render_security_rule(rule, "return") if rule.direction == "egress" else None
        if line is not None and line not in rules:
            rules.append(line)
    rules.append("counter drop")
    return rules


def render_security_rule(rule: SecurityRule, verdict: str = "accept") -> str | None:
    """One security group rule as an nft rule ending in `verdict`, matching the
    remote side as source (ingress) or destination (egress); None when it can
    match nothing here (a group without members, an IPv6 rule: guests have only
    IPv4 and the bridge table drops their IPv6; an unknown protocol)."""
    if rule.ethertype != "IPv4":
        return None
    remote = "ip daddr" if rule.direction == "egress" else "ip saddr"
    parts = []
    if rule.cidr:
        try:
            source = ip_network(rule.cidr, strict=False)
        except ValueError:
            LOG.warning("Skipping a security group rule with a bad CIDR %r", rule.cidr)
            return None
        if not isinstance(source, IPv4Network):
            return None
        if source.prefixlen == 32:
            parts.append(f"{remote} {source.network_address}")
        elif source.prefixlen:
            parts.append(f"{remote} {source}")
    else:
        members = sorted({str(a) for a in (_maybe_ipv4(ip) for ip in rule.remote_ips) if a},
                         key=_ip_sort)
        if not members:
            return None
        parts.append(f"{remote} {_addr_set(members)}")
    protocol = (rule.protocol or "").strip().lower()
    number = None if protocol in ("", "any", "-1", "all") else _protocol_number(protocol)
    if number is None:
        pass
    elif number in _PORT_PROTOCOLS:
        name = _PORT_PROTOCOLS[number]
        ports = _port_range(rule.from_port, rule.to_port)
        parts.append(f"{name} dport {ports}" if ports else f"meta l4proto {name}")
    elif number == 1:
        icmp_type = _optional(rule.from_port)
        icmp_code = _optional(rule.to_port)
        if icmp_type is None:
            parts.append("meta l4proto icmp")
        else:
            parts.append(f"icmp type {icmp_type}")
            if icmp_code is not None:
                parts.append(f"icmp code {icmp_code}")
    elif 0 <= number < 256:
        parts.append(f"meta l4proto {number}")
    else:
        LOG.warning("Skipping a security group rule with unknown protocol %r", rule.protocol)
        return None
    return " ".join([*parts, verdict])


def _protocol_number(protocol: str) -> int:
    """A rule's protocol (a name or a number) as a number; -1 when unknown."""
    number = decimal_protocol(protocol)
    return number if number is not None else PROTOCOL_NUMBERS.get(protocol, -1)


# the protocols whose rules have a port range, by number, as nft names them
_PORT_PROTOCOLS = {6: "tcp", 17: "udp", 33: "dccp", 132: "sctp", 136: "udplite"}


def _bridge_table(guests: list[GuestPort], quarantine: list[str]) -> list[str]:
    """A port that is down is dropped both ways; one without port security passes
    what it sends unchecked; the others jump to their anti-spoofing chain, which
    also lets their allowed address pairs through."""
    ports = [f'"{g.tap}" : {_bridge_verdict(g)}' for g in guests]
    ports += [f'"{tap}" : drop' for tap in quarantine]
    taps = sorted([g.tap for g in guests] + quarantine)
    down = sorted(g.tap for g in guests if g.down)
    to_taps = ["oifname @taps ether type != { ip, arp } drop",
               *(["oifname @down drop"] if down else [])]
    lines = [
        f"table {BRIDGE_TABLE} {{",
        *_map("ports", "ifname : verdict", ports),
        *_map("taps", "ifname", [f'"{tap}"' for tap in taps], kind="set"),
        *(_map("down", "ifname", [f'"{tap}"' for tap in down], kind="set") if down else []),
        *_chain("prerouting", "type filter hook prerouting priority filter; policy accept;",
                ["iifname vmap @ports"]),
        *_chain("forward", "type filter hook forward priority filter; policy accept;", to_taps),
        *_chain("output", "type filter hook output priority filter; policy accept;", to_taps),
    ]
    for guest in guests:
        if guest.down or guest.open:
            continue
        pairs = [rule for address, mac in guest.pairs for rule in (
            f"ether saddr {mac} arp saddr ether {mac} arp saddr ip {address} accept",
            f"ether saddr {mac} ip saddr {address} accept")]
        lines += _chain(f"from-{guest.tap}", None, [
            *pairs,
            f"ether saddr != {guest.mac} drop",
            f"arp saddr ether {guest.mac} arp saddr ip {{ 0.0.0.0, {guest.ip} }} accept",
            f"ip saddr {guest.ip} accept",
            "ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept",
            "counter drop",
        ])
    return [*lines, "}"]


def _bridge_verdict(guest: GuestPort) -> str:
    if guest.down:
        return "drop"
    return "accept" if guest.open else f"jump from-{guest.tap}"


def _guest_ports(state: HostNetworkState) -> list[GuestPort]:
    ports: dict[str, GuestPort] = {}
    for instance in state.instances:
        for vif in instance.vifs:
            ports[vif.tap] = _port(vif, instance.port_filter(vif.id))
    return [ports[tap] for tap in sorted(ports)]


def _port(vif: Vif, port: PortFilter) -> GuestPort:
    mac = _unicast_mac(vif.address)
    if mac is None:
        # one bad stored MAC must not cost the host its whole firewall: that
        # tap alone is dropped both ways
        LOG.warning("Dropping the traffic of vif %s: bad MAC address %r", vif.id, vif.address)
    return GuestPort(tap=vif.tap, mac=mac or "", ip=str(_ipv4(vif.fixed_ip, "fixed_ip")),
                     bridge=vif.bridge, open=not port.port_security,
                     down=mac is None or not port.admin_state_up, pairs=tuple(_pairs(port)))


# a stored value goes into the nft script only if it is exactly a MAC: no
# newline or other text can ride along into the script
_MAC = re.compile(r"([0-9a-f]{2}:){5}[0-9a-f]{2}")


def _unicast_mac(value: object) -> str | None:
    """`value` in lower case if it is a unicast MAC address, else None."""
    mac = value.lower() if isinstance(value, str) else ""
    if not _MAC.fullmatch(mac) or int(mac[:2], 16) & 1:
        return None
    return mac


def _chain(name: str, header: str | None, rules: list[str]) -> list[str]:
    body = ([f"\t\t{header}"] if header else []) + [f"\t\t{rule}" for rule in rules]
    return [f"\tchain {name} {{", *body, "\t}"]


def _map(name: str, type_: str, elements: list[str], kind: str = "map") -> list[str]:
    return [f"\t{kind} {name} {{", f"\t\ttype {type_}", "\t\telements = {",
            *[f"\t\t\t{e}," for e in elements], "\t\t}", "\t}"]


def _name_set(names: Iterable[str]) -> str:
    unique = sorted(set(names))
    if len(unique) == 1:
        return f'"{unique[0]}"'
    return "{ " + ", ".join(f'"{n}"' for n in unique) + " }"


def _addr_set(addresses: list[str]) -> str:
    return addresses[0] if len(addresses) == 1 else "{ " + ", ".join(addresses) + " }"


def _port_range(low: int | None, high: int | None) -> str | None:
    low, high = _optional(low), _optional(high)
    if low is None and high is None:
        return None
    low = low if low is not None else 0
    high = high if high is not None else low
    if (low, high) == (0, 65535) or (low, high) == (1, 65535):
        return None
    return str(low) if low == high else f"{min(low, high)}-{max(low, high)}"


def _optional(value: int | None) -> int | None:
    return None if value is None or value < 0 else int(value)


def _ipv4(value: str, what: str) -> IPv4Address:
    address = _maybe_ipv4(value)
    if address is None:
        raise FirewallFailed(reason=f"{what} {value!r} is not an IPv4 address")
    return address


def _maybe_ipv4(value: str) -> IPv4Address | None:
    try:
        address = ip_address(value)
    except ValueError:
        return None
    return address if isinstance(address, IPv4Address) else None


def _ipv4_network(value: str, what: str) -> IPv4Network:
    try:
        network = ip_network(value, strict=False)
    except ValueError:
        network = None
    if not isinstance(network, IPv4Network):
        raise FirewallFailed(reason=f"{what} {value!r} is not an IPv4 network")
    return network


def _ip_sort(value: str) -> int:
    return int(IPv4Address(value))


class Firewall:
    """Applies rendered rulesets through `nft -f -` (the command door)."""

    def __init__(self, runner: CommandRunner) -> None:
        self.runner = runner

    async def apply(self, state: HostNetworkState, quarantined: Iterable[str] = ()) -> str:
        """Replace Novalet's tables with those of `state` in one transaction; return the script."""
        script = render_ruleset(state, quarantined)
        await self.runner.run(["nft", "-f", "-"], input=script)
        LOG.debug("Applied the firewall: %d lines", script.count("\n"))
        return script

    async def clear(self) -> None:
        """Delete Novalet's tables (and nothing else)."""
        await self.runner.run(["nft", "-f", "-"],
                              input=render_ruleset(HostNetworkState(host="")))
