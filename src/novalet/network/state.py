"""The desired networking of one host, built from the database: what the network
manager hands its host driver to make the kernel match.

- networks: every network that is not multi_host (one network host serves them),
  and the multi_host ones its own guests are on, served from the host's own
  address there (its bridge's, its guests' gateway and DHCP server). Each with
  dnsmasq's static hosts (MAC -> address, hostname): multi_host, its own guests only.
- instances: each guest on the host with its NICs and its groups' rules, a source
  group resolved to the fixed IPs of the group's members. A guest in no group
  sends freely, as before egress rules (see _unfiltered_egress).
- floating: the floating IPs to NAT (on multi_host networks: its own guests' only).
"""

from __future__ import annotations

from typing import Any

from novalet import config
from novalet.db import network as db_network
from novalet.db import routers as db_routers
from novalet.db.network import InterfaceRow
from novalet.db.engine import Database
from novalet.db.models import Network, SecurityGroup
from novalet.network.api import dns_servers, vif_from_row
from novalet.network.host_settings import set_metadata_target
from novalet.network.model import (FloatingNat, HostNetworkState, InstanceNet, NetworkOnHost,
                                   PortFilter, SecurityRule)

async def host_state(db: Database, conf: config.Config, host: str) -> HostNetworkState:
    """Everything `host` must enforce, read in one transaction."""
    dhcp = conf.get("network", "network_manager") != "flat"
    snap = await db_network.host_snapshot(db, host)
    snat = _snat_addresses(await db_routers.list_routes(db))
    networks = [_network_on_host(n, dhcp, snap.dhcp_hosts.get(n.id, []),
                                 snap.own_addresses.get(n.id), snat.get(n.id))
                for n in snap.networks]
    instances = []
    for instance in snap.instances:
        vifs = [vif_from_row(row, dhcp) for row in snap.interfaces.get(instance.uuid, [])
                if row.fixed_ip is not None]
        groups = snap.groups.get(instance.uuid, [])
        rules = [rule for group in groups for rule in _rules(group, snap.member_ips)] \
            if groups else _unfiltered_egress()
        filters = [f for f in (_port_filter(row) for row in snap.interfaces.get(instance.uuid, [])
                               if row.fixed_ip is not None) if f is not None]
        instances.append(InstanceNet(instance.uuid, instance.project_id, vifs, rules, filters))
    public = str(conf.get("network", "public_interface")) or None
    floating = [FloatingNat(f, fixed, public or interface)
                for f, fixed, interface in snap.floating]
    state = HostNetworkState(host=host, networks=networks, instances=instances,
                             floating=floating, public_interface=public,
                             egress_filtered=True)
    return set_metadata_target(state, conf)


def _snat_addresses(routes: list[db_routers.Route]) -> dict[int, str]:
    """guest network id -> the gateway address its router SNATs it to: a router
    that is up, with a gateway and SNAT on."""
    return {r.network_id: r.gw_address for r in routes
            if r.gw_address and r.enable_snat and r.admin_state_up}


def _network_on_host(network: Network, dhcp: bool, hosts: list[tuple[str, str, str]],
                     own_address: str | None, snat_address: str | None) -> NetworkOnHost:
    gateway = own_address or network.gateway
    # host_snapshot gives only networks with a subnet, whose L3 columns are set
    assert network.cidr and gateway and network.dhcp_start and network.netmask
    return NetworkOnHost(
        uuid=network.uuid, label=network.label, cidr=network.cidr, gateway=gateway,
        bridge=network.bridge, dhcp_start=network.dhcp_start, netmask=network.netmask,
        vlan=network.vlan, interface=network.bridge_interface, multi_host=network.multi_host,
        dhcp=dhcp and network.enable_dhcp, dns=dns_servers(network, gateway), mtu=network.mtu,
        hosts={mac: (address, hostname) for mac, address, hostname in hosts},
        needs_router=bool(network.needs_router),
        snat_address=snat_address if network.needs_router else None)


def _port_filter(row: InterfaceRow) -> PortFilter | None:
    """The NIC's port settings the firewall honours (network/ports.py); None for the
    defaults. A pair stored without a MAC has the port's."""
    vif = row.vif
    pairs = [[p["ip_address"], p.get("mac_address") or vif.address]
             for p in vif.allowed_address_pairs or []]
    found = PortFilter(vif.uuid, port_security=bool(vif.port_security_enabled),
                       admin_state_up=bool(vif.admin_state_up), address_pairs=pairs)
    return None if found == PortFilter(vif.uuid) else found


_ANYWHERE = {"IPv4": "0.0.0.0/0", "IPv6": "::/0"}


def _unfiltered_egress() -> list[SecurityRule]:
    """The rules of an instance in no security group: it may send anything. Before
    egress rules its outbound traffic was never filtered, and a guest whose last
    group was removed keeps that (Neutron would drop it all); what may reach it is
    unchanged (only replies and DHCP)."""
    return [SecurityRule(None, None, None, cidr=cidr, direction="egress", ethertype=ethertype)
            for ethertype, cidr in _ANYWHERE.items()]


def _rules(group: SecurityGroup, member_ips: dict[int, list[str]]) -> list[SecurityRule]:
    """A group's rules for the firewall: protocols in lower case (None: any); a rule
    from a source group carries its members' fixed IPs (none yet: it admits nobody);
    a rule with neither a CIDR nor a group (Neutron's) is from or to anywhere."""
    rules = []
    for rule in group.rules:
        protocol = rule.protocol.lower() if rule.protocol else None
        if rule.group_id is not None:
            rules.append(SecurityRule(protocol, rule.from_port, rule.to_port,
                                      remote_ips=list(member_ips.get(rule.group_id, [])),
                                      direction=rule.direction, ethertype=rule.ethertype))
        else:
            cidr = rule.cidr or _ANYWHERE.get(rule.ethertype, "0.0.0.0/0")
            rules.append(SecurityRule(protocol, rule.from_port, rule.to_port, cidr=cidr,
                                      direction=rule.direction, ethertype=rule.ethertype))
    return rules


def backported_for_1_0(state: HostNetworkState) -> dict[str, Any]:
    """`state` for a network service of conductor RPC before 1.6 (HostNetworkState
    1.0, rules parsed by hand as SecurityRule(**fields) and all read as IPv4
    ingress): only the IPv4 ingress rules, without the fields it does not know.
    Its firewall lets all egress out, as it always did, and filters every port as
    one with the defaults: port_filters came after it, and nothing refuses those
    settings while a host runs it. There a port with port security off is still
    anti-spoofed and gets its server's groups (no groups: ingress all dropped),
    allowed address pairs are dropped (the pair addresses can't send), both fail
    closed; an administratively down port passes traffic (fails open). Its
    NetworkOnHost(**data) knows no needs_router or snat_address: they are left
    out, and it masquerades a network-API network as any other (fails open)."""
    data = state.to_dict("1.0")
    for network in data["networks"]:
        for name in NetworkOnHost.ADDED:
            network.pop(name, None)
    for instance in data["instances"]:
        instance.pop("port_filters", None)
        instance["rules"] = [
            {k: v for k, v in rule.items() if k not in SecurityRule.ADDED}
            for rule in instance["rules"]
            if rule.get("direction", "ingress") == "ingress"
            and rule.get("ethertype", "IPv4") == "IPv4"]
    return data
