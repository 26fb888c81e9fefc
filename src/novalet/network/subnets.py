"""Subnets with Neutron's semantics, over the one IPAM of the network domain.

A network has at most one IPv4 subnet for now (docs/network-api.md). The subnet
is mirrored into the network's L3 columns and fixed_ips rows (db/subnets.py), so
the allocator, host state, DHCP and firewall keep reading those: allocation pools
become the unreserved rows, enable_dhcp turns the network's dnsmasq on or off (and
guests then get static configuration), dns_nameservers are DHCP option 6.
host_routes are stored and shown but not yet served to guests.

Scope: a member sees the subnets of its project's networks and of shared,
external and unassigned ones, and writes on its own networks only; a reader
writes nothing; an admin does anything. Hosts refresh after every change.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from novalet import config, exceptions, policy
from novalet.common.context import RequestContext
from novalet.db import network as db_network
from novalet.db import subnets as db
from novalet.db.engine import Database
from novalet.db.models import Network, Subnet
from novalet.db.subnet_pools import Pool, in_pools, pooled
from novalet.network import subnet_ranges
from novalet.network.api import MAX_PREFIX_SIZE, MIN_PREFIX_SIZE, Refresher, refresh_hosts

LOG = logging.getLogger(__name__)

MAX_DNS_NAMESERVERS = 2  # the network mirrors two: dns1 and dns2
MAX_HOST_ROUTES = 20     # Neutron's default max_subnet_host_routes
MAX_ALLOCATION_POOLS = 32  # bounds the work of a create or update on the event loop
NAME_MAX = 255


class _Unset(Enum):
    UNSET = "UNSET"


UNSET = _Unset.UNSET
"""A field not given (create: its default applies; update: it stays)."""


# --- errors (named as Neutron's types) -------------------------------------------

class InvalidInput(exceptions.Invalid):
    msg_fmt = "Invalid input for operation: %(error_message)s."


class BadRequest(exceptions.Invalid):
    msg_fmt = "Bad %(resource)s request: %(msg)s."


class PolicyNotAuthorized(exceptions.Forbidden):
    msg_fmt = "(rule:%(action)s) is disallowed by policy."


class NetworkNotFound(exceptions.NotFound):
    msg_fmt = "Network %(net_id)s could not be found."


class SubnetNotFound(exceptions.NotFound):
    msg_fmt = "Subnet %(subnet_id)s could not be found."


class InvalidAllocationPool(exceptions.Invalid):
    msg_fmt = "The allocation pool %(pool)s is not valid."


class OutOfBoundsAllocationPool(exceptions.Invalid):
    msg_fmt = "The allocation pool %(pool)s spans beyond the subnet cidr %(subnet_cidr)s."


class OverlappingAllocationPools(exceptions.Conflict):
    msg_fmt = ("Found overlapping allocation pools: %(pool_1)s %(pool_2)s for subnet "
               "%(subnet_cidr)s.")


class GatewayConflictWithAllocationPools(exceptions.Conflict):
    msg_fmt = "Gateway ip %(ip_address)s conflicts with allocation pool %(pool)s."


class GatewayIpInUse(exceptions.Conflict):
    msg_fmt = "Current gateway ip %(ip_address)s already in use by %(holder)s. Unable to update."


class SubnetInUse(exceptions.Conflict):
    msg_fmt = "Unable to complete operation on subnet %(subnet_id)s: %(reason)s"


class DNSNameServersExhausted(exceptions.Invalid):
    msg_fmt = ("Unable to complete operation for %(subnet_id)s. The number of DNS "
               "nameservers exceeds the limit %(quota)s.")


class HostRoutesExhausted(exceptions.Invalid):
    msg_fmt = ("Unable to complete operation for %(subnet_id)s. The number of host routes "
               "exceeds the limit %(quota)s.")


# --- requests and the view -------------------------------------------------------

@dataclass(frozen=True)
class SubnetSpec:
    """POST /subnets: Neutron's fields. gateway_ip UNSET: the first address;
    allocation_pools None: every address but the network, broadcast and gateway ones."""

    network_id: str
    cidr: str | None = None
    ip_version: int = 4
    name: str = ""
    description: str = ""
    gateway_ip: str | None | _Unset = UNSET
    allocation_pools: Sequence[Pool] | None = None
    enable_dhcp: bool = True
    dns_nameservers: Sequence[str] = ()
    host_routes: Sequence[dict[str, str]] = ()
    project_id: str | None = None
    subnetpool_id: str | None = None   # subnet pools: not supported (400)
    prefixlen: int | None = None       # the same


@dataclass(frozen=True)
class SubnetChanges:
    """PUT /subnets/{id}: the attributes Neutron lets change; UNSET ones stay."""

    name: str | _Unset = UNSET
    description: str | _Unset = UNSET
    gateway_ip: str | None | _Unset = UNSET
    allocation_pools: Sequence[Pool] | _Unset = UNSET
    enable_dhcp: bool | _Unset = UNSET
    dns_nameservers: Sequence[str] | _Unset = UNSET
    host_routes: Sequence[dict[str, str]] | _Unset = UNSET


@dataclass(frozen=True)
class SubnetInfo:
    """A subnet as the network API shows it: id and network_id are uuids."""

    id: str
    network_id: str
    name: str
    description: str
    project_id: str | None
    ip_version: int
    cidr: str
    gateway_ip: str | None
    enable_dhcp: bool
    allocation_pools: list[Pool] = field(default_factory=list)
    dns_nameservers: list[str] = field(default_factory=list)
    host_routes: list[dict[str, str]] = field(default_factory=list)
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    external: bool = False  # its network's router:external

    @classmethod
    def of(cls, subnet: Subnet, network: Network) -> SubnetInfo:
        return cls(id=subnet.uuid, network_id=network.uuid, name=subnet.name,
                   description=subnet.description, project_id=subnet.project_id,
                   ip_version=subnet.ip_version, cidr=subnet.cidr, gateway_ip=subnet.gateway_ip,
                   enable_dhcp=subnet.enable_dhcp,
                   allocation_pools=[dict(p) for p in subnet.allocation_pools],
                   dns_nameservers=list(subnet.dns_nameservers),
                   host_routes=[dict(r) for r in subnet.host_routes],
                   created_at=subnet.created_at, updated_at=subnet.updated_at,
                   external=bool(network.external))


# --- request bodies ----------------------------------------------------------------

# Accepted on create only at their Neutron defaults (IPv6, segments, service types).
_INERT: dict[str, Any] = {"ipv6_ra_mode": None, "ipv6_address_mode": None, "segment_id": None,
          "service_types": [], "use_default_subnetpool": False}
READ_ONLY = ("id", "network_id", "cidr", "ip_version", "project_id", "tenant_id",
             "subnetpool_id", "prefixlen", "created_at", "updated_at", "revision_number")


def spec_from_body(body: dict[str, Any]) -> SubnetSpec:
    """A POST body's "subnet" object as a SubnetSpec, its kinds checked (400 with
    Neutron's messages): tenant_id is project_id's old name."""
    fields = {f for f in SubnetSpec.__dataclass_fields__}
    _unrecognized(set(body) - fields - set(_INERT) - {"tenant_id"})
    for name, default in _INERT.items():
        if name in body and body[name] != default:
            raise _invalid(f"{name} {body[name]!r} is not supported here (IPv4 subnets "
                           "without segments or service types only)")
    values = {name: body[name] for name in fields if name in body}
    if "tenant_id" in body:
        if values.setdefault("project_id", body["tenant_id"]) != body["tenant_id"]:
            raise _invalid("project_id and tenant_id do not match")
    if "network_id" not in values:
        raise BadRequest(resource="subnets", msg="network_id must be specified")
    for name in ("network_id", "name", "description", "project_id", "subnetpool_id"):
        _kind(values, name, str, none=name in ("project_id", "subnetpool_id"))
    _kind(values, "cidr", str, none=True)
    _kind(values, "gateway_ip", str, none=True)
    for name in ("ip_version", "prefixlen"):
        if isinstance(values.get(name), str) and values[name].isdigit():
            values[name] = int(values[name])
        _kind(values, name, int, none=name == "prefixlen")
    _common_kinds(values)
    return SubnetSpec(**values)


def changes_from_body(body: dict[str, Any]) -> SubnetChanges:
    """A PUT body's "subnet" object as SubnetChanges: a read-only attribute is a 400
    ("Cannot update read-only attribute cidr"), as is an unknown one."""
    fields = set(SubnetChanges.__dataclass_fields__)
    for name in body:
        if name in READ_ONLY:
            raise _invalid(f"Cannot update read-only attribute {name}")
    _unrecognized(set(body) - fields)
    values = dict(body)
    for name in ("name", "description"):
        _kind(values, name, str)
    _kind(values, "gateway_ip", str, none=True)
    _common_kinds(values)
    return SubnetChanges(**values)


def _unrecognized(names: set[str]) -> None:
    if names:
        raise BadRequest(resource="subnet", msg="Unrecognized attribute(s) '"
                         + ", ".join(sorted(names)) + "'")


def _kind(values: dict[str, Any], name: str, kind: type, none: bool = False) -> None:
    if name not in values or (none and values[name] is None):
        return
    value = values[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _invalid(f"Invalid input for {name}. Reason: '{value}' is not a valid "
                       f"{kind.__name__}")


def _common_kinds(values: dict[str, Any]) -> None:
    """enable_dhcp (also "true"/"false", as Neutron converts), and the list fields."""
    dhcp = values.get("enable_dhcp")
    if isinstance(dhcp, str) and dhcp.lower() in ("true", "false"):
        values["enable_dhcp"] = dhcp.lower() == "true"
    _kind(values, "enable_dhcp", bool)
    for name in ("dns_nameservers", "host_routes"):
        if name in values and values[name] is None:  # Neutron reads null as []
            values[name] = []
    for name in ("allocation_pools", "dns_nameservers", "host_routes"):
        _kind(values, name, list, none=name == "allocation_pools")
        if name == "dns_nameservers":
            for server in values.get(name) or []:
                if not isinstance(server, str):
                    raise _invalid(f"dns_nameservers entry {server!r} is not a valid IP address")


# --- the service -----------------------------------------------------------------

class SubnetService:
    """Subnet CRUD with Neutron's errors; every change is mirrored into the network's
    L3 columns and addresses in the same transaction, then hosts refresh."""

    def __init__(self, database: Database, conf: config.Config,
                 refresh_hosts: Refresher | None = None) -> None:
        self.db = database
        self.conf = conf
        self.refresh_hosts = refresh_hosts

    async def list_subnets(self, ctx: RequestContext) -> list[SubnetInfo]:
        rows = await db.list_subnets(self.db, None if ctx.is_admin else ctx.project_id or "")
        return [SubnetInfo.of(subnet, network) for subnet, network in rows
                if _may_get(ctx, subnet, network)]

    async def get_subnet(self, ctx: RequestContext, subnet_id: str) -> SubnetInfo:
        subnet, network = await self._visible_subnet(ctx, subnet_id)
        return SubnetInfo.of(subnet, network)

    async def create_subnet(self, ctx: RequestContext, spec: SubnetSpec) -> SubnetInfo:
        """The network's subnet, mirrored into it. 400 for what is not supported here
        (IPv6, subnet pools, no gateway, a second subnet, a CIDR outside /22../30 or
        overlapping another network's)."""
        network = await self._writable_network(ctx, spec.network_id, "create_subnet")
        project_id = spec.project_id or ctx.project_id
        if not ctx.is_admin and spec.project_id not in (None, ctx.project_id):
            raise BadRequest(resource="subnet", msg="Specifying 'project_id' or 'tenant_id' "
                             "other than the authenticated project in request requires "
                             "admin privileges")
        cidr = _check_cidr(spec)
        refused = subnet_ranges.refusal(cidr, self.conf, ctx.is_admin)
        if refused:
            raise _invalid(refused)
        gateway = (_first_host(cidr) if spec.gateway_ip is UNSET
                   else _check_gateway(spec.gateway_ip, cidr))
        pools = (_default_pools(cidr, gateway) if spec.allocation_pools is None
                 else _check_pools(spec.allocation_pools, cidr))
        _check_gateway_outside(gateway, pools)
        dns = _check_dns(spec.dns_nameservers, "new subnet")
        routes = _check_routes(spec.host_routes, "new subnet")
        values = {"uuid": _new_uuid(), "name": _text(spec.name, "name"),
                  "description": _text(spec.description, "description"),
                  "project_id": project_id or network.project_id, "ip_version": 4,
                  "cidr": str(cidr), "gateway_ip": str(gateway),
                  "enable_dhcp": bool(spec.enable_dhcp), "allocation_pools": pools,
                  "dns_nameservers": dns, "host_routes": routes}
        try:
            subnet, network = await db.create_subnet(
                self.db, network.uuid, values, _mirror(cidr, gateway, pools, dns,
                                                       bool(spec.enable_dhcp)),
                _address_rows(cidr, gateway, pools))
        except db_network.NetworkNotFound:
            raise NetworkNotFound(net_id=spec.network_id) from None
        except db.NetworkHasSubnet as e:
            raise InvalidInput(error_message=(
                f"network {spec.network_id} has subnet {e.kwargs['subnet_id']} already: one "
                "IPv4 subnet per network for now; delete it, or update it")) from None
        except db.CidrOverlap:
            raise InvalidInput(error_message=(
                f"Requested subnet with cidr: {cidr} for network: {spec.network_id} overlaps "
                "with another subnet (CIDRs may not overlap across networks here yet)")) \
                from None
        LOG.info("Created subnet %s (%s) on network %s", subnet.uuid, subnet.cidr, network.uuid)
        await self._refresh()
        return SubnetInfo.of(subnet, network)

    async def update_subnet(self, ctx: RequestContext, subnet_id: str,
                            changes: SubnetChanges) -> SubnetInfo:
        """Change what Neutron lets change; the mirror and hosts follow."""
        subnet, network = await self._visible_subnet(ctx, subnet_id)
        self._check_owner(ctx, network, "update_subnet")

        def plan(subnet: Subnet, network: Network) -> tuple[dict[str, Any], dict[str, Any]]:
            return _update_plan(subnet, changes)

        try:
            subnet, network = await db.update_subnet(self.db, subnet_id, plan)
        except db.SubnetNotFound:
            raise SubnetNotFound(subnet_id=subnet_id) from None
        except db.AddressInUse as e:
            raise GatewayIpInUse(ip_address=e.kwargs["address"],
                                 holder=e.kwargs["holder"]) from None
        await self._refresh()
        return SubnetInfo.of(subnet, network)

    async def delete_subnet(self, ctx: RequestContext, subnet_id: str) -> None:
        """SubnetInUse (409) while a server holds an address of it; else the network
        loses its L3 columns and addresses and no host serves it any more."""
        _, network = await self._visible_subnet(ctx, subnet_id)
        self._check_owner(ctx, network, "delete_subnet")
        try:
            await db.delete_subnet(self.db, subnet_id)
        except db.SubnetNotFound:
            raise SubnetNotFound(subnet_id=subnet_id) from None
        except db.AddressesInUse:
            raise SubnetInUse(subnet_id=subnet_id, reason=(
                "One or more ports have an IP allocation from this subnet: delete the "
                "servers (or their interfaces) on its network first")) from None
        LOG.info("Deleted subnet %s of network %s", subnet_id, network.uuid)
        await self._refresh()

    # --- scope ----------------------------------------------------------------------

    async def _visible_subnet(self, ctx: RequestContext, subnet_id: str
                              ) -> tuple[Subnet, Network]:
        try:
            subnet, network = await db.get_subnet(self.db, subnet_id)
        except db.SubnetNotFound:
            raise SubnetNotFound(subnet_id=subnet_id) from None
        if not (ctx.is_admin or subnet.project_id == ctx.project_id
                or _network_visible(ctx, network)) or not _may_get(ctx, subnet, network):
            raise SubnetNotFound(subnet_id=subnet_id)
        return subnet, network

    async def _writable_network(self, ctx: RequestContext, network_id: str,
                                action: str) -> Network:
        try:
            network = await db_network.get_network(self.db, network_id)
        except db_network.NetworkNotFound:
            raise NetworkNotFound(net_id=network_id) from None
        if not ctx.is_admin and not _network_visible(ctx, network):
            raise NetworkNotFound(net_id=network_id)
        self._check_owner(ctx, network, action)
        return network

    @staticmethod
    def _check_owner(ctx: RequestContext, network: Network, action: str) -> None:
        """Admins write anywhere; members on their project's networks; readers nowhere."""
        if not policy.authorize(ctx, action, network.project_id or "", _target(network)):
            raise PolicyNotAuthorized(action=action)
        if ctx.is_admin:
            return
        if ("member" not in policy.with_implied_roles(ctx.roles)
                or network.project_id is None or network.project_id != ctx.project_id):
            raise PolicyNotAuthorized(action=action)

    async def _refresh(self) -> None:
        await refresh_hosts(self.refresh_hosts, {"*"})


def _target(network: Network, project_id: str | None = None) -> dict[str, Any]:
    """What the subnet policy rules read: the owner and the network's flags (an
    unassigned nova-network network counts as shared, as on networks)."""
    return {"project_id": project_id or network.project_id or "",
            "shared": bool(network.shared or network.project_id is None),
            "router:external": bool(network.external)}


def _may_get(ctx: RequestContext, subnet: Subnet, network: Network) -> bool:
    target = _target(network, subnet.project_id)
    return policy.authorize(ctx, "get_subnet", target["project_id"], target)


def _network_visible(ctx: RequestContext, network: Network) -> bool:
    return (network.project_id in (None, ctx.project_id) or network.shared
            or network.external)


# --- validation ------------------------------------------------------------------

def _invalid(message: str) -> InvalidInput:
    return InvalidInput(error_message=message)


def _text(value: str, name: str) -> str:
    if len(value) > NAME_MAX:
        raise _invalid(f"{name} is {len(value)} characters long; at most {NAME_MAX}")
    return value


def _new_uuid() -> str:
    return str(uuid.uuid4())


def _check_cidr(spec: SubnetSpec) -> ipaddress.IPv4Network:
    if spec.subnetpool_id is not None or spec.prefixlen is not None:
        raise _invalid("subnet pools (subnetpool_id, prefixlen) are not supported here; "
                       "give a cidr")
    if spec.ip_version == 6:
        raise _invalid("IPv6 subnets are not supported here yet: ip_version must be 4")
    if spec.ip_version != 4:
        raise _invalid(f"ip_version {spec.ip_version!r} is not valid: 4 (or 6)")
    if not spec.cidr:
        raise BadRequest(resource="subnets", msg="a cidr must be specified "
                         "(subnet pools are not supported here)")
    try:
        network = ipaddress.ip_network(spec.cidr, strict=False)
    except ValueError:
        raise _invalid(f"'{spec.cidr}' is not a valid IP subnet") from None
    if network.version != 4:
        raise _invalid(f"cidr {spec.cidr} is IPv{network.version}: it does not match "
                       "ip_version 4")
    if "/" not in spec.cidr or str(network) != spec.cidr:
        raise _invalid(f"'{spec.cidr}' isn't a recognized IP subnet cidr, '{network}' is "
                       "recommended")
    assert isinstance(network, ipaddress.IPv4Network)
    if not MAX_PREFIX_SIZE <= network.prefixlen <= MIN_PREFIX_SIZE:
        raise _invalid(f"cidr {network} has {network.num_addresses} addresses; subnets here "
                       f"have from 4 (a /{MIN_PREFIX_SIZE}) to 1024 (a /{MAX_PREFIX_SIZE}) "
                       "addresses, as this cloud keeps a row per address")
    return network


def _address(text: Any, what: str) -> ipaddress.IPv4Address:
    try:
        if not isinstance(text, str):
            raise ValueError(text)
        address = ipaddress.ip_address(text)
    except ValueError:
        raise _invalid(f"{what} '{text}' is not a valid IP address") from None
    if address.version != 4:
        raise _invalid(f"{what} '{text}' does not match the ip_version '4'")
    assert isinstance(address, ipaddress.IPv4Address)
    return address


def _first_host(cidr: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    return cidr.network_address + 1


def _check_gateway(gateway: str | None, cidr: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    if gateway is None:
        raise _invalid("a subnet without a gateway (gateway_ip null) is not supported here "
                       "yet: the host serving the network answers DHCP and routes from its "
                       "gateway address; give one, or leave gateway_ip out for the first")
    address = _address(gateway, "gateway_ip")
    if address not in cidr or address in (cidr.network_address, cidr.broadcast_address):
        raise _invalid(f"Gateway is not valid on subnet: {address} must be a host address "
                       f"of {cidr}")
    return address


def _pool_text(pool: Pool) -> str:
    return f"{pool['start']}-{pool['end']}"


def _check_pools(pools: Sequence[Any], cidr: ipaddress.IPv4Network) -> list[Pool]:
    if len(pools) > MAX_ALLOCATION_POOLS:
        raise _invalid(f"{len(pools)} allocation pools given; a subnet has at most "
                       f"{MAX_ALLOCATION_POOLS}: merge adjacent ranges")
    checked: list[tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]] = []
    for pool in pools:
        if not isinstance(pool, dict) or set(pool) != {"start", "end"}:
            raise InvalidAllocationPool(pool=pool)
        start, end = _address(pool["start"], "start"), _address(pool["end"], "end")
        if start > end:
            raise InvalidAllocationPool(pool=_pool_text(pool))
        hosts = (cidr.network_address + 1, cidr.broadcast_address - 1)
        if not (hosts[0] <= start and end <= hosts[1]):
            raise OutOfBoundsAllocationPool(pool=_pool_text(pool), subnet_cidr=cidr)
        checked.append((start, end))
    checked.sort()
    for (s1, e1), (s2, e2) in zip(checked, checked[1:], strict=False):
        if s2 <= e1:
            raise OverlappingAllocationPools(pool_1=f"{s1}-{e1}", pool_2=f"{s2}-{e2}",
                                             subnet_cidr=cidr)
    return [{"start": str(s), "end": str(e)} for s, e in checked]


def _default_pools(cidr: ipaddress.IPv4Network, gateway: ipaddress.IPv4Address) -> list[Pool]:
    """Every host address but the gateway, as one or two runs."""
    first, last = cidr.network_address + 1, cidr.broadcast_address - 1
    runs = [(first, gateway - 1), (gateway + 1, last)]
    return [{"start": str(s), "end": str(e)} for s, e in runs if s <= e]


def _check_gateway_outside(gateway: ipaddress.IPv4Address, pools: Sequence[Pool]) -> None:
    for pool in pools:
        if in_pools(str(gateway), [pool]):
            raise GatewayConflictWithAllocationPools(ip_address=gateway, pool=_pool_text(pool))


def _check_dns(servers: Sequence[str], subnet: str) -> list[str]:
    if len(servers) > MAX_DNS_NAMESERVERS:  # counted first: the list may be huge
        raise DNSNameServersExhausted(subnet_id=subnet, quota=MAX_DNS_NAMESERVERS)
    checked: list[str] = []
    for server in servers:
        address = str(_address(server, "dns_nameservers entry"))
        if address in checked:
            raise _invalid(f"Duplicate nameserver '{address}'")
        checked.append(address)
    return checked


def _check_routes(routes: Sequence[Any], subnet: str) -> list[dict[str, str]]:
    if len(routes) > MAX_HOST_ROUTES:  # counted first: the list may be huge
        raise HostRoutesExhausted(subnet_id=subnet, quota=MAX_HOST_ROUTES)
    checked: list[dict[str, str]] = []
    for route in routes:
        if not isinstance(route, dict) or set(route) != {"destination", "nexthop"}:
            raise _invalid(f"host route {route!r} must have exactly destination and nexthop")
        try:
            if not isinstance(route["destination"], str):
                raise ValueError(route["destination"])
            destination = ipaddress.ip_network(route["destination"])
        except ValueError:
            raise _invalid(f"host route destination '{route['destination']}' is not a "
                           "valid CIDR (with no host bits set)") from None
        if destination.version != 4:
            raise _invalid(f"host route destination '{destination}' does not match the "
                           "ip_version '4'")
        entry = {"destination": str(destination),
                 "nexthop": str(_address(route["nexthop"], "host route nexthop"))}
        if entry in checked:
            raise _invalid(f"Duplicate hostroute '{route['destination']}'")
        checked.append(entry)
    return checked


# --- the mirror --------------------------------------------------------------------

def _mirror(cidr: ipaddress.IPv4Network, gateway: ipaddress.IPv4Address, pools: list[Pool],
            dns: list[str], enable_dhcp: bool) -> dict[str, Any]:
    """The network's L3 columns for its subnet; dnsmasq's range starts at the first pool."""
    return {"cidr": str(cidr), "gateway": str(gateway), "netmask": str(cidr.netmask),
            "broadcast": str(cidr.broadcast_address), "enable_dhcp": enable_dhcp,
            "dhcp_start": pools[0]["start"] if pools else str(cidr.network_address + 1),
            **_dns_columns(dns)}


def _dns_columns(dns: Sequence[str]) -> dict[str, str | None]:
    return {"dns1": dns[0] if dns else None, "dns2": dns[1] if len(dns) > 1 else None}


def _address_rows(cidr: ipaddress.IPv4Network, gateway: ipaddress.IPv4Address,
                  pools: list[Pool]) -> list[tuple[str, bool]]:
    """A row per address; those no pool holds (the network, broadcast and gateway
    addresses among them) are reserved: the allocator never hands them out."""
    held = pooled(pools)
    return [(str(a), a == gateway or int(a) not in held) for a in cidr]


def _update_plan(subnet: Subnet, changes: SubnetChanges
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(subnet values, network values) of `changes` on the locked subnet, validated
    against what it has (a new gateway against its pools, new pools against its
    gateway)."""
    cidr = ipaddress.IPv4Network(subnet.cidr)
    values: dict[str, Any] = {}
    mirror: dict[str, Any] = {}
    for name in ("name", "description"):
        value = getattr(changes, name)
        if value is not UNSET:
            values[name] = _text(value, name)
    gateway = ipaddress.IPv4Address(subnet.gateway_ip) if subnet.gateway_ip else None
    if changes.gateway_ip is not UNSET:
        gateway = _check_gateway(changes.gateway_ip, cidr)
        values["gateway_ip"] = mirror["gateway"] = str(gateway)
    pools: list[Pool] = list(subnet.allocation_pools)
    if changes.allocation_pools is not UNSET:
        pools = _check_pools(changes.allocation_pools, cidr)
        values["allocation_pools"] = pools
        mirror["dhcp_start"] = pools[0]["start"] if pools else str(cidr.network_address + 1)
    if gateway is not None and ("gateway_ip" in values or "allocation_pools" in values):
        _check_gateway_outside(gateway, pools)
    if changes.enable_dhcp is not UNSET:
        values["enable_dhcp"] = mirror["enable_dhcp"] = bool(changes.enable_dhcp)
    if changes.dns_nameservers is not UNSET:
        values["dns_nameservers"] = _check_dns(changes.dns_nameservers, subnet.uuid)
        mirror.update(_dns_columns(values["dns_nameservers"]))
    if changes.host_routes is not UNSET:
        values["host_routes"] = _check_routes(changes.host_routes, subnet.uuid)
    return values, mirror
