"""The network domain service: every rule about networks, fixed and floating IPs and
security groups, for every front-end (nova-network's API and managers in one place).

Three modes, as nova-network had (`[network] network_manager`):
  flat       one shared network on one bridge; guests get static addresses
  flat_dhcp  the same, with dnsmasq handing the addresses out
  vlan       each project gets its own network: a VLAN, a bridge and a subnet cut
             from fixed_range, created on the project's first boot

Changes that alter what a host must enforce (rules, memberships, floating NATs)
end with a call to `refresh_hosts` (set by whoever wires the network service) with
the compute hosts concerned.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from novalet import config, exceptions
from novalet.common.context import RequestContext
from novalet.db import network as db
from novalet.db import security_groups as db_groups
from novalet.db.engine import Database
from novalet.db.models import FixedIp, Network, SecurityGroup, SecurityGroupRule
from novalet.db.network import AddressRow, FixedRow, FloatingRow, InterfaceRow
from novalet.network.model import Vif

LOG = logging.getLogger(__name__)

MODES = ("flat", "flat_dhcp", "vlan")
# One fixed_ips (or floating_ips) row per address: keep networks small enough that
# creating one stays instant. /22 is 1024 addresses.
MAX_PREFIX_SIZE = 22
MIN_PREFIX_SIZE = 30
MAX_VLAN = 4094
BRIDGE_NAME_MAX = 15  # IFNAMSIZ - 1
RO_SECURITY_GROUPS = ("default",)
_PROTOCOLS = ("TCP", "UDP", "ICMP")

Refresher = Callable[[set[str]], Awaitable[None]]
_UNSET: Any = object()


# --- errors -----------------------------------------------------------------------

class InvalidCidr(exceptions.Invalid):
    msg_fmt = "%(cidr)s is not a valid IP network."


class InvalidAddress(exceptions.Invalid):
    msg_fmt = "%(address)s is not a valid IP address."


class AddressOutOfRange(exceptions.Invalid):
    msg_fmt = "%(address)s is not within %(cidr)s."


class NetworkSizeUnsupported(exceptions.Invalid):
    msg_fmt = ("Network %(cidr)s has %(size)s addresses; networks here have from 4 "
               "(a /30) to 1024 (a /22) addresses.")


class Ipv6Unsupported(exceptions.Invalid):
    msg_fmt = "IPv6 networks are not supported here; give an IPv4 cidr."


class InvalidVlan(exceptions.Invalid):
    msg_fmt = "The vlan number must be between 1 and 4094, not %(vlan)s."


class NoMoreVlans(exceptions.Conflict):
    msg_fmt = "No free VLAN id from %(start)s to 4094 is left for a new network."


class NoMoreNetworks(exceptions.Conflict):
    msg_fmt = "No more available networks: fixed_range %(cidr)s is used up."


class NoUnassignedNetwork(exceptions.Invalid):
    msg_fmt = "No more available networks."


class InvalidBridge(exceptions.Invalid):
    msg_fmt = "Bridge name %(bridge)s is longer than 15 characters."


class NetworkModeUnsupported(exceptions.NovaletError):
    msg_fmt = "The requested functionality is not supported."
    code = 501


class NetworkNotFoundForRequest(exceptions.Invalid):
    msg_fmt = "Network could not be found for uuid %(uuid)s"


class DuplicateNetworkRequested(exceptions.Invalid):
    msg_fmt = "Duplicate networks (%(uuid)s) are not allowed"


class NoNetworkForInstance(exceptions.Conflict):
    msg_fmt = ("No network is available for project %(project_id)s; an administrator "
               "must create one (os-networks).")


class FloatingIpPoolNotFound(exceptions.NotFound):
    msg_fmt = "Floating IP pool %(pool)s not found."


class FloatingIpNotOwned(exceptions.Forbidden):
    msg_fmt = "Floating IP %(address)s is not allocated to your project."


class CannotDisassociateAutoAssigned(exceptions.Forbidden):
    msg_fmt = "Cannot disassociate auto assigned floating IP"


class InstanceHasNoFixedIp(exceptions.Invalid):
    msg_fmt = "No fixed IPs associated to instance"


class FixedAddressNotOnInstance(exceptions.Invalid):
    msg_fmt = "Specified fixed address not assigned to instance"


class FloatingIpNotAssociatedWith(exceptions.Conflict):
    msg_fmt = "Floating IP %(address)s is not associated with instance %(id)s."


class InvalidSecurityGroupProperty(exceptions.Invalid):
    msg_fmt = "%(reason)s"


class SecurityGroupReadOnly(exceptions.Invalid):
    msg_fmt = "Unable to %(action)s system group '%(name)s'"


class InvalidSecurityGroupId(exceptions.Invalid):
    msg_fmt = "Security group id should be integer"


class InvalidRule(exceptions.Invalid):
    msg_fmt = "%(reason)s"


class InvalidInput(exceptions.Invalid):
    msg_fmt = "Invalid input received: %(reason)s"


class InvalidIpProtocol(exceptions.Invalid):
    msg_fmt = "Invalid IP protocol %(protocol)s."


class InvalidPortRange(exceptions.Invalid):
    msg_fmt = "Invalid port range %(from_port)s:%(to_port)s. %(msg)s"


class SecurityGroupNotFoundForBoot(exceptions.Invalid):
    msg_fmt = "Security group %(name)s not found for project %(project_id)s."


# --- what views read ------------------------------------------------------------------

@dataclass
class ServerNetworking:
    """What a server view shows about networking: addresses and security groups."""

    addresses: list[AddressRow] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FloatingPool:
    name: str
    cidr: str


def parse_floating_pools(text: str) -> list[FloatingPool]:
    """`[network] floating_ip_pools`: "name=cidr[,name=cidr]"; ValueError if malformed."""
    pools = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, cidr = item.partition("=")
        if not sep or not name.strip() or not cidr.strip():
            raise ValueError(f"floating_ip_pools: {item!r} is not name=cidr")
        pools.append(FloatingPool(name.strip(), cidr.strip()))
    return pools


def _ipv4_network(cidr: str) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise InvalidCidr(cidr=cidr) from None
    if network.version != 4:
        raise Ipv6Unsupported()
    assert isinstance(network, ipaddress.IPv4Network)
    return network


def _check_size(network: ipaddress.IPv4Network) -> None:
    if not MAX_PREFIX_SIZE <= network.prefixlen <= MIN_PREFIX_SIZE:
        raise NetworkSizeUnsupported(cidr=network, size=network.num_addresses)


def _ipv4_address(text: str) -> ipaddress.IPv4Address:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidAddress(address=text) from None
    if address.version != 4:
        raise InvalidAddress(address=text)
    assert isinstance(address, ipaddress.IPv4Address)
    return address


def _to_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


class NetworkAPI:
    """Networks, addresses and security groups. Returned rows are detached."""

    def __init__(self, database: Database, conf: config.Config,
                 refresh_hosts: Refresher | None = None) -> None:
        self.db = database
        self.conf = conf
        self.refresh_hosts = refresh_hosts
        # Projects known to have their default group: it can't be deleted, so one
        # check per project and process is enough.
        self._have_default: set[str] = set()

    @property
    def mode(self) -> str:
        mode = str(self.conf.get("network", "network_manager"))
        if mode not in MODES:
            raise exceptions.Invalid(reason=f"[network] network_manager must be one of "
                                     f"{', '.join(MODES)}, not {mode}")
        return mode

    def _opt(self, name: str) -> Any:
        return self.conf.get("network", name)

    # --- start ---------------------------------------------------------------------

    async def ensure_defaults(self) -> None:
        """Create, once, what the configuration asks for: the default network (flat
        and flat_dhcp modes, when no network exists) and the floating IP pools
        (addresses missing from a pool are added; none are removed)."""
        if self.mode != "vlan" and not await db.list_networks(self.db):
            cidr = str(self._opt("fixed_range"))
            try:
                network = await self.create_network(
                    RequestContext.admin(), label=str(self._opt("default_network_label")),
                    cidr=cidr)
            except (db.CidrConflict, db.DuplicateVlan):
                pass  # another process made it first
            else:
                LOG.info("Created network %s (%s) on bridge %s", network.label,
                         network.cidr, network.bridge)
        for pool in parse_floating_pools(str(self._opt("floating_ip_pools"))):
            addresses = _ipv4_network(pool.cidr)
            if addresses.prefixlen < MAX_PREFIX_SIZE:
                raise NetworkSizeUnsupported(cidr=addresses, size=addresses.num_addresses)
            hosts = [str(a) for a in addresses.hosts()]
            added = await db.add_floating_addresses(self.db, pool.name, hosts)
            if added:
                LOG.info("Floating IP pool %s: added %d addresses of %s", pool.name, added,
                         addresses)

    # --- networks ------------------------------------------------------------------

    async def create_network(self, ctx: RequestContext, label: str, cidr: str,
                             **options: Any) -> Network:
        """A network from an IPv4 CIDR: the gateway is its first host (unless given),
        DHCP starts after it; the network, gateway and broadcast addresses (and any
        outside allowed_start..allowed_end) are reserved. Options: gateway, dns1,
        dns2, bridge, bridge_interface, multi_host, mtu, project_id, vlan,
        vlan_start, allowed_start, allowed_end."""
        network = _ipv4_network(cidr)
        _check_size(network)
        vlan_mode = self.mode == "vlan"
        vlan = options.get("vlan")
        for value in (vlan, options.get("vlan_start")):
            if value is not None and not 1 <= int(value) <= MAX_VLAN:
                raise InvalidVlan(vlan=value)
        bridge = options.get("bridge")
        if bridge and len(bridge) > BRIDGE_NAME_MAX:
            raise InvalidBridge(bridge=bridge)
        values, addresses = self._network_plan(label, network, options)

        def plan(existing: list[Network]) -> tuple[dict[str, Any], list[tuple[str, bool]]]:
            planned = dict(values)
            if vlan_mode:
                planned["vlan"] = int(vlan) if vlan is not None else self._next_vlan(
                    existing, int(options.get("vlan_start") or self._opt("vlan_start")))
                planned["bridge"] = bridge or f"nvbr{planned['vlan']}"
                planned["bridge_interface"] = (options.get("bridge_interface")
                                               or self._opt("vlan_interface") or None)
            return planned, addresses

        created = await db.create_network(self.db, plan)
        await self._refresh({"*"})
        return created

    def _network_plan(self, label: str, network: ipaddress.IPv4Network,
                      options: dict[str, Any]
                      ) -> tuple[dict[str, Any], list[tuple[str, bool]]]:
        first, broadcast = network.network_address, network.broadcast_address
        gateway = _ipv4_address(options["gateway"]) if options.get("gateway") else first + 1
        if gateway not in network or gateway in (first, broadcast):
            raise AddressOutOfRange(address=gateway, cidr=network)
        dhcp_start = next(a for a in (first + 2, first + 3) if a != gateway)
        low, high = first + 1, broadcast - 1
        for key in ("allowed_start", "allowed_end"):
            if options.get(key):
                address = _ipv4_address(options[key])
                if not low <= address <= high:
                    raise AddressOutOfRange(address=address, cidr=network)
        if options.get("allowed_start"):
            low = _ipv4_address(options["allowed_start"])
        if options.get("allowed_end"):
            high = _ipv4_address(options["allowed_end"])
        if options.get("allowed_start"):
            dhcp_start = max(dhcp_start, low)
        addresses = [(str(a), a in (first, gateway, broadcast) or not low <= a <= high)
                     for a in network]
        multi_host = options.get("multi_host")
        mtu = options.get("mtu") or self._opt("network_device_mtu") or None
        values = {
            "label": label, "cidr": str(network), "gateway": str(gateway),
            "netmask": str(network.netmask), "broadcast": str(broadcast),
            "dhcp_start": str(dhcp_start),
            "dns1": options.get("dns1") or self._opt("dns1") or None,
            "dns2": options.get("dns2") or self._opt("dns2") or None,
            "bridge": options.get("bridge") or self._opt("flat_network_bridge"),
            "bridge_interface": (options.get("bridge_interface")
                                 or self._opt("flat_interface") or None),
            "vlan": None, "project_id": options.get("project_id"),
            "multi_host": bool(self._opt("multi_host") if multi_host is None else multi_host),
            "mtu": mtu,
        }
        return values, addresses

    @staticmethod
    def _next_vlan(existing: list[Network], start: int) -> int:
        used = {n.vlan for n in existing if n.vlan is not None}
        for vlan in range(start, MAX_VLAN + 1):
            if vlan not in used:
                return vlan
        raise NoMoreVlans(start=start)

    async def list_networks(self, ctx: RequestContext) -> list[Network]:
        """Admins see every network; others their project's and unassigned ones."""
        return await db.list_networks(self.db, None if ctx.is_admin else ctx.project_id)

    async def get_network(self, ctx: RequestContext, network_uuid: str) -> Network:
        network = await db.get_network(self.db, network_uuid)
        if not ctx.is_admin and network.project_id not in (None, ctx.project_id):
            raise db.NetworkNotFound(network_id=network_uuid)
        return network

    async def delete_network(self, ctx: RequestContext, network_uuid: str) -> None:
        """NetworkInUse (409) while it belongs to a project or has allocated addresses.
        Every network host then takes its bridge, DHCP server and rules down."""
        await db.delete_network(self.db, network_uuid)
        await self._refresh({"*"})

    async def add_network_to_project(self, ctx: RequestContext, project_id: str,
                                     network_uuid: str | None) -> Network:
        """(vlan mode) Give the project the named network, or any unassigned one."""
        if self.mode != "vlan":
            raise NetworkModeUnsupported()
        if network_uuid is not None:
            try:
                network = await db.get_network(self.db, network_uuid)
            except db.NetworkNotFound:
                raise NetworkNotFoundForRequest(uuid=network_uuid) from None
            await db.set_network_fields(self.db, network.uuid, {"project_id": project_id})
            return await db.get_network(self.db, network.uuid)
        claimed = await db.claim_network(self.db, project_id)
        if claimed is None:
            raise NoUnassignedNetwork()
        return claimed

    async def associate_network(self, ctx: RequestContext, network_uuid: str, *,
                                project: Any = _UNSET, host: Any = _UNSET) -> None:
        """Set or clear (None) a network's project and/or host."""
        values = {}
        if project is not _UNSET:
            values["project_id"] = project
        if host is not _UNSET:
            values["host"] = host
        await db.get_network(self.db, network_uuid)
        if values:
            await db.set_network_fields(self.db, network_uuid, values)

    # --- instances -----------------------------------------------------------------

    async def check_requested_networks(self, project_id: str,
                                       requested: Sequence[tuple[str, str | None]]) -> None:
        """Validate a boot request's networks, (uuid, fixed address or None) each:
        400 when a network is unknown to the project, repeated, or an address is
        invalid or taken."""
        seen: set[str] = set()
        for network_uuid, address in requested:
            if network_uuid in seen:
                raise DuplicateNetworkRequested(uuid=network_uuid)
            seen.add(network_uuid)
            network = await self._network_for_request(project_id, network_uuid)
            if address is not None:
                if _ipv4_address(address) not in ipaddress.ip_network(network.cidr):
                    raise db.FixedIpUnavailable(address=address, net=network.uuid)
                try:
                    row = await db.fixed_ip_by_address(self.db, address)
                except db.FixedIpNotFoundForAddress:
                    raise db.FixedIpUnavailable(address=address, net=network.uuid) from None
                if row.fixed.reserved or row.fixed.instance_uuid or row.fixed.allocated:
                    raise db.FixedIpUnavailable(address=address, net=network.uuid)

    async def _network_for_request(self, project_id: str, network_uuid: str) -> Network:
        try:
            network = await db.get_network(self.db, network_uuid)
        except db.NetworkNotFound:
            raise NetworkNotFoundForRequest(uuid=network_uuid) from None
        allowed = (project_id,) if self.mode == "vlan" else (project_id, None)
        if network.project_id not in allowed:
            raise NetworkNotFoundForRequest(uuid=network_uuid)
        return network

    async def allocate_for_instance(
            self, instance_uuid: str, project_id: str, host: str | None, hostname: str, *,
            user_id: str | None = None,
            requested_networks: Sequence[tuple[str, str | None]] | None = None) -> list[Vif]:
        """Give an instance its NICs: one per requested network (uuid, fixed address
        or None), else one on the default network (vlan: the project's own, created
        on first use). Each NIC gets a unique MAC and a free fixed IP. The instance
        joins the project's default security group unless it is in a group already;
        with auto_assign_floating_ip its first address gets a floating IP.

        Idempotent: an instance that has NICs already gets them back (their host
        updated), so a rescheduled build can call it again. On failure nothing is
        left allocated."""
        existing = (await db.interfaces(self.db, [instance_uuid])).get(instance_uuid)
        if existing:
            await db.set_interfaces_host(self.db, instance_uuid, host)
            return [self._vif(row) for row in existing if row.fixed_ip is not None]
        try:
            if requested_networks:
                targets = [(await self._network_for_request(project_id, uuid), address)
                           for uuid, address in requested_networks]
            else:
                targets = [(await self._default_network(project_id), None)]
            rows = [await db.allocate_interface(self.db, instance_uuid, network.id, host,
                                                address)
                    for network, address in targets]
            default = await self._default_group(project_id, user_id)
            await db_groups.add_instance_groups(self.db, [instance_uuid], [default.id],
                                         only_if_none=True)
            if self._opt("auto_assign_floating_ip") and rows[0].fixed_ip is not None:
                floating = await db.allocate_floating_ip(
                    self.db, project_id, str(self._opt("default_floating_pool")),
                    auto_assigned=True)
                await db.associate_floating_ip(self.db, floating.id, rows[0].fixed_ip.id, host,
                                               self._opt("public_interface") or None)
                rows[0].floating_ips.append(floating.address)
        except Exception:
            await db.deallocate_instance(self.db, instance_uuid)
            raise
        LOG.info("Allocated %s to instance %s", ", ".join(
            f"{r.fixed_ip.address} ({r.network.label})" for r in rows if r.fixed_ip),
            instance_uuid)
        await self._refresh(await db.project_hosts(self.db, project_id))
        return [self._vif(row) for row in rows if row.fixed_ip is not None]

    async def _default_network(self, project_id: str) -> Network:
        if self.mode == "vlan":
            return await self._project_network(project_id)
        networks = await db.list_networks(self.db, project_id)
        if not networks:
            raise NoNetworkForInstance(project_id=project_id)
        own = [n for n in networks if n.project_id == project_id]
        return (own or networks)[0]

    async def _project_network(self, project_id: str) -> Network:
        """(vlan) The project's network: its own, else an unassigned one it claims,
        else a new one with the next free VLAN and subnet of fixed_range."""
        supernet = _ipv4_network(str(self._opt("fixed_range")))
        size = int(self._opt("network_size"))
        prefix = 32 - (size.bit_length() - 1)
        if size & (size - 1) or not MAX_PREFIX_SIZE <= prefix <= MIN_PREFIX_SIZE \
                or prefix < supernet.prefixlen:
            raise exceptions.Invalid(reason=f"[network] network_size {size} must be a power "
                                     f"of two from 4 to 1024 and fit in {supernet}")
        label = str(self._opt("default_network_label"))

        def plan(existing: list[Network]) -> tuple[dict[str, Any], list[tuple[str, bool]]]:
            taken = [ipaddress.ip_network(n.cidr) for n in existing]
            for subnet in supernet.subnets(new_prefix=prefix):
                if not any(subnet.overlaps(t) for t in taken):
                    break
            else:
                raise NoMoreNetworks(cidr=supernet)
            vlan = self._next_vlan(existing, int(self._opt("vlan_start")))
            values, addresses = self._network_plan(label, subnet, {})
            values.update(vlan=vlan, bridge=f"nvbr{vlan}", project_id=project_id,
                          bridge_interface=self._opt("vlan_interface") or None)
            return values, addresses

        return await db.create_network(self.db, plan, for_project=project_id)

    async def deallocate_for_instance(self, instance_uuid: str) -> list[Vif]:
        """Release the instance's fixed IPs and NICs, detach its floating IPs (they
        stay allocated to the project, except auto-assigned ones) and drop its
        security group memberships. Returns the NICs it had (for DHCP release).
        Hosts of the project's instances and the instance's own are refreshed."""
        rows = await db.deallocate_instance(self.db, instance_uuid)
        if not rows:
            return []
        LOG.info("Released %s of instance %s", ", ".join(
            r.fixed_ip.address for r in rows if r.fixed_ip), instance_uuid)
        owner = await db.instance_owner(self.db, instance_uuid)
        if owner is not None:
            project_id, host = owner
            hosts = await db.project_hosts(self.db, project_id)
            await self._refresh(hosts | {host} if host else hosts)
        return [self._vif(row) for row in rows if row.fixed_ip is not None]

    async def vifs_for_instance(self, instance_uuid: str) -> list[Vif]:
        rows = (await db.interfaces(self.db, [instance_uuid])).get(instance_uuid, [])
        return [self._vif(row) for row in rows if row.fixed_ip is not None]

    async def server_networking(self, instance_uuids: Sequence[str]
                                ) -> dict[str, ServerNetworking]:
        """Addresses and security group names of many servers in two queries (for
        server lists); servers without any are absent."""
        result: dict[str, ServerNetworking] = {}
        for row in await db.addresses(self.db, instance_uuids):
            result.setdefault(row.instance_uuid, ServerNetworking()).addresses.append(row)
        for uuid, names in (await db_groups.instance_group_names(self.db, instance_uuids)).items():
            result.setdefault(uuid, ServerNetworking()).security_groups = names
        return result

    def _vif(self, row: InterfaceRow) -> Vif:
        return vif_from_row(row, dhcp=self.mode != "flat")

    # --- fixed IPs -----------------------------------------------------------------

    async def get_fixed_ip(self, address: str) -> FixedRow:
        _fixed_address(address)
        return await db.fixed_ip_by_address(self.db, address)

    async def set_fixed_ip_reserved(self, address: str, reserved: bool) -> None:
        _fixed_address(address)
        await db.set_fixed_ip_reserved(self.db, address, reserved)

    # --- floating IPs ----------------------------------------------------------------

    async def floating_ip_pools(self) -> list[str]:
        return await db.floating_pools(self.db)

    async def allocate_floating_ip(self, ctx: RequestContext, pool: str | None = None
                                   ) -> FloatingRow:
        """A free floating IP of `pool` (default_floating_pool) for ctx's project."""
        pool = pool or str(self._opt("default_floating_pool"))
        if pool not in await db.floating_pools(self.db):
            raise FloatingIpPoolNotFound(pool=pool)
        floating = await db.allocate_floating_ip(self.db, ctx.project_id or "", pool)
        return FloatingRow(floating, None, None)

    async def list_floating_ips(self, ctx: RequestContext) -> list[FloatingRow]:
        return await db.list_floating_ips(self.db, ctx.project_id or "")

    async def get_floating_ip(self, ctx: RequestContext, floating_id: str | int) -> FloatingRow:
        """The floating IP if ctx's project holds it (admins: any); else 404."""
        number = _to_int(floating_id)
        if number is None:
            raise db.FloatingIpNotFound(id=floating_id)
        row = await db.get_floating_ip(self.db, number)
        if not ctx.is_admin and row.floating.project_id != ctx.project_id:
            raise db.FloatingIpNotFound(id=floating_id)
        return row

    async def release_floating_ip(self, ctx: RequestContext, floating_id: str | int) -> None:
        """Disassociate (if associated) and return the address to its pool."""
        row = await self.get_floating_ip(ctx, floating_id)
        if row.floating.fixed_ip_id is not None:
            await self._disassociate(ctx, row)
        if row.floating.auto_assigned:
            return  # an auto-assigned address goes back with its instance
        await db.release_floating_ip(self.db, row.floating.id)

    async def associate_floating_ip(self, ctx: RequestContext, instance: Any, address: str,
                                    fixed_address: str | None = None) -> None:
        """NAT floating `address` to a fixed IP of the instance (the first, or
        fixed_address). An address associated elsewhere is moved."""
        rows = [r for rs in (await db.interfaces(self.db, [instance.uuid])).values()
                for r in rs if r.fixed_ip is not None]
        if not rows:
            raise InstanceHasNoFixedIp()
        fixed: FixedIp | None = rows[0].fixed_ip
        if fixed_address is not None:
            fixed = next((r.fixed_ip for r in rows if r.fixed_ip is not None
                          and r.fixed_ip.address == fixed_address), None)
            if fixed is None:
                raise FixedAddressNotOnInstance()
        assert fixed is not None
        row = await db.get_floating_ip_by_address(self.db, address)
        floating = row.floating
        if floating.auto_assigned:
            return
        self._check_owner(ctx, floating.project_id, floating.address)
        hosts = {instance.host} if instance.host else set()
        if floating.fixed_ip_id is not None:
            if row.fixed_address == fixed.address:
                return
            if row.instance_uuid:
                hosts.add(await db.instance_host(self.db, row.instance_uuid) or "")
        await db.associate_floating_ip(self.db, floating.id, fixed.id, instance.host,
                                       self._opt("public_interface") or None)
        LOG.info("Floating IP %s now NATs to %s (instance %s)", address, fixed.address,
                 instance.uuid)
        await self._refresh(hosts - {""})

    async def disassociate_floating_ip(self, ctx: RequestContext, instance: Any,
                                       address: str) -> None:
        """Stop NATing `address` to the instance; 409 when it isn't NATed to it."""
        row = await db.get_floating_ip_by_address(self.db, address)
        if row.floating.fixed_ip_id is None or row.instance_uuid != instance.uuid:
            raise FloatingIpNotAssociatedWith(address=address, id=instance.uuid)
        await self._disassociate(ctx, row)

    async def _disassociate(self, ctx: RequestContext, row: FloatingRow) -> None:
        if row.floating.auto_assigned:
            raise CannotDisassociateAutoAssigned()
        self._check_owner(ctx, row.floating.project_id, row.floating.address)
        host = await db.instance_host(self.db, row.instance_uuid) if row.instance_uuid else None
        await db.disassociate_floating_ip(self.db, row.floating.id)
        LOG.info("Floating IP %s no longer NATs to %s", row.floating.address,
                 row.fixed_address)
        await self._refresh({host} if host else set())

    @staticmethod
    def _check_owner(ctx: RequestContext, project_id: str | None, address: str) -> None:
        if not ctx.is_admin and project_id != ctx.project_id:
            raise FloatingIpNotOwned(address=address)

    # --- security groups -----------------------------------------------------------

    async def _default_group(self, project_id: str, user_id: str | None) -> SecurityGroup:
        group = await db_groups.ensure_default_group(self.db, project_id, user_id)
        self._have_default.add(project_id)
        return group

    async def _ensure_default(self, ctx: RequestContext) -> None:
        if ctx.project_id and ctx.project_id not in self._have_default:
            await self._default_group(ctx.project_id, ctx.user_id)

    async def list_security_groups(self, ctx: RequestContext, all_projects: bool = False
                                   ) -> list[SecurityGroup]:
        """The project's groups (its default group is created on first sight);
        admins may ask for every project's."""
        await self._ensure_default(ctx)
        project = None if (all_projects and ctx.is_admin) else ctx.project_id or ""
        return await db_groups.list_groups(self.db, project)

    async def get_security_group(self, ctx: RequestContext, group_id: str | int
                                 ) -> SecurityGroup:
        """The group if ctx's project owns it (admins: any); 404 otherwise, also for
        ids that are not numbers (names)."""
        await self._ensure_default(ctx)
        number = _to_int(group_id)
        if number is None:
            raise db_groups.SecurityGroupNotFound(security_group_id=group_id)
        return await db_groups.get_group(self.db, number,
                                  None if ctx.is_admin else ctx.project_id or "")

    async def create_security_group(self, ctx: RequestContext, name: Any, description: Any
                                    ) -> SecurityGroup:
        name, description = _group_property(name, "name"), _group_property(
            description, "description")
        await self._ensure_default(ctx)
        group = await db_groups.create_group(self.db, ctx.project_id or "", ctx.user_id, name,
                                      description)
        LOG.info("Created security group %s", name)
        return group

    async def update_security_group(self, ctx: RequestContext, group_id: str | int,
                                    name: Any, description: Any) -> SecurityGroup:
        group = await self.get_security_group(ctx, group_id)
        name, description = _group_property(name, "name"), _group_property(
            description, "description")
        if group.name in RO_SECURITY_GROUPS:
            raise SecurityGroupReadOnly(action="update", name=group.name)
        return await db_groups.update_group(self.db, group.id, name, description)

    async def delete_security_group(self, ctx: RequestContext, group_id: str | int) -> None:
        group = await self.get_security_group(ctx, group_id)
        if group.name in RO_SECURITY_GROUPS:
            raise SecurityGroupReadOnly(action="delete", name=group.name)
        await db_groups.delete_group(self.db, group.id)
        LOG.info("Deleted security group %s", group.name)
        await self._refresh(await db.project_hosts(self.db, group.project_id))

    async def rule_sources(self, rules: Sequence[SecurityGroupRule]
                           ) -> dict[int, tuple[str, str]]:
        """Source group id -> (name, project id) for the rules that name one."""
        return await db_groups.group_names(self.db, [r.group_id for r in rules if r.group_id])

    async def create_security_group_rule(self, ctx: RequestContext, parent_group_id: Any,
                                         ip_protocol: Any = None, from_port: Any = None,
                                         to_port: Any = None, cidr: Any = None,
                                         group_id: Any = None) -> SecurityGroupRule:
        """An ingress rule, validated as Nova validates it: from a CIDR (default
        0.0.0.0/0; protocol and ports required) or from a source group (no protocol:
        any traffic; tcp/udp without ports: all ports; icmp: any type and code)."""
        parent = await self._group_from_body(ctx, parent_group_id)
        if group_id is not None:
            source = await self._group_from_body(ctx, group_id)
            values = _ingress_rule(ip_protocol, from_port, to_port, group_id=source.id)
        else:
            values = _ingress_rule(ip_protocol, from_port, to_port, cidr=_parse_cidr(cidr))
        if values is None:
            raise InvalidRule(reason="Not enough parameters to build a valid rule.")
        if values.get("cidr"):
            network, _, prefix = values["cidr"].partition("/")
            if network not in ("0.0.0.0", "::") and prefix == "0":
                raise InvalidRule(reason=f"Bad prefix for network in cidr {values['cidr']}")
        rule = await db_groups.create_rule(self.db, parent.id, values)
        LOG.info("Security group %s added %s ingress (%s:%s)", parent.name, rule.protocol,
                 rule.from_port, rule.to_port)
        await self._refresh(await db.project_hosts(self.db, parent.project_id))
        return rule

    async def _group_from_body(self, ctx: RequestContext, value: Any) -> SecurityGroup:
        number = _to_int(value)
        if number is None:
            raise InvalidSecurityGroupId()
        return await self.get_security_group(ctx, number)

    async def delete_security_group_rule(self, ctx: RequestContext, rule_id: str | int) -> None:
        number = _to_int(rule_id)
        if number is None:
            raise db_groups.SecurityGroupRuleNotFound(rule_id=rule_id)
        await self._ensure_default(ctx)
        rule = await db_groups.get_rule(self.db, number)
        parent = await self.get_security_group(ctx, rule.parent_group_id)
        await db_groups.delete_rule(self.db, rule.id)
        LOG.info("Security group %s removed %s ingress (%s:%s)", parent.name, rule.protocol,
                 rule.from_port, rule.to_port)
        await self._refresh(await db.project_hosts(self.db, parent.project_id))

    async def instance_security_groups(self, ctx: RequestContext, instance_uuid: str
                                       ) -> list[SecurityGroup]:
        await self._ensure_default(ctx)
        return (await db_groups.instance_groups(self.db, [instance_uuid])).get(instance_uuid, [])

    async def add_security_group(self, ctx: RequestContext, instance: Any, name: str) -> None:
        """Make the instance a member of its project's group `name`."""
        group = await db_groups.get_group_by_name(self.db, instance.project_id, name)
        await db_groups.add_instance_group(self.db, instance.uuid, group.id)
        await self._refresh(await db.project_hosts(self.db, group.project_id))

    async def remove_security_group(self, ctx: RequestContext, instance: Any, name: str) -> None:
        group = await db_groups.get_group_by_name(self.db, instance.project_id, name)
        await db_groups.remove_instance_group(self.db, instance.uuid, group.id)
        await self._refresh(await db.project_hosts(self.db, group.project_id))

    async def check_security_groups(self, project_id: str, user_id: str | None,
                                    names: Sequence[str]) -> list[int]:
        """The ids of the groups a boot request names (400 for an unknown one);
        `default` always exists."""
        default = await self._default_group(project_id, user_id)
        wanted = [n for n in dict.fromkeys(names) if n != "default"]
        found = await db_groups.groups_by_names(self.db, project_id, wanted)
        for name in wanted:
            if name not in found:
                raise SecurityGroupNotFoundForBoot(name=name, project_id=project_id)
        return [default.id if n == "default" else found[n].id for n in dict.fromkeys(names)]

    async def associate_security_groups(self, instance_uuids: Sequence[str], project_id: str,
                                        user_id: str | None,
                                        names: Sequence[str] | None = None) -> None:
        """Make new instances members of the named groups (none named: default);
        call at create so that views show them before the build allocates."""
        ids = await self.check_security_groups(project_id, user_id, names or ["default"])
        await db_groups.add_instance_groups(self.db, instance_uuids, ids)

    # --- refresh -------------------------------------------------------------------

    async def _refresh(self, hosts: set[str]) -> None:
        if not hosts or self.refresh_hosts is None:
            return
        try:
            await self.refresh_hosts(hosts)
        except Exception:  # the change is recorded; the hosts catch up at their next sync
            LOG.exception("Could not ask hosts %s to refresh their networking",
                          ", ".join(sorted(hosts)))


# --- helpers shared with state.py -----------------------------------------------------

def vif_from_row(row: InterfaceRow, dhcp: bool) -> Vif:
    """A stored NIC (which must have its fixed IP) as hosts and guests see it."""
    network = row.network
    assert row.fixed_ip is not None
    return Vif(id=row.vif.uuid, address=row.vif.address, network_id=network.uuid,
               network_label=network.label, bridge=network.bridge,
               fixed_ip=row.fixed_ip.address, cidr=network.cidr, gateway=network.gateway,
               dns=dns_servers(network), vlan=network.vlan, dhcp=dhcp, mtu=network.mtu,
               floating_ips=list(row.floating_ips))


def dns_servers(network: Network) -> list[str]:
    """The network's DNS servers; the gateway when none is configured."""
    servers = [s for s in (network.dns1, network.dns2) if s]
    return servers or [network.gateway]


def _fixed_address(address: str) -> None:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise exceptions.Invalid(f"Fixed IP address {address} is invalid.") from None


def _group_property(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidSecurityGroupProperty(reason=f"Security group {name} is not a string "
                                           "or unicode")
    text = value.strip()
    if len(text) < 1:
        raise InvalidSecurityGroupProperty(
            reason=f"{name} has a minimum character requirement of 1.")
    if len(text) > 255:
        raise InvalidSecurityGroupProperty(reason=f"{name} has more than 255 characters.")
    return text


def _parse_cidr(cidr: Any) -> str:
    if not cidr:
        return "0.0.0.0/0"
    text = str(cidr)
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidCidr(cidr=text) from None
    if "/" not in text:
        text = str(network)
    return text


def _ingress_rule(ip_protocol: Any, from_port: Any, to_port: Any, *,
                  group_id: int | None = None, cidr: str | None = None
                  ) -> dict[str, Any] | None:
    """The values of a new rule, or None when a CIDR rule lacks protocol or ports."""
    values: dict[str, Any] = {}
    upper = str(ip_protocol).upper() if ip_protocol else ""
    if group_id is not None:
        values["group_id"] = group_id
        # A source group without ports opens the protocol's whole range.
        if from_port is None and to_port is None:
            if upper == "ICMP":
                from_port = to_port = -1
            elif upper in ("TCP", "UDP"):
                from_port, to_port = 1, 65535
    elif cidr:
        values["cidr"] = cidr
    if ip_protocol and from_port is not None and to_port is not None:
        first, last = _to_int(from_port), _to_int(to_port)
        if first is None or last is None:
            raise InvalidInput(reason="Type and Code must be integers for ICMP protocol type"
                               if upper == "ICMP" else "To and From ports must be integers")
        if upper not in _PROTOCOLS:
            raise InvalidIpProtocol(protocol=ip_protocol)
        if upper in ("TCP", "UDP") and first > last:
            raise InvalidPortRange(from_port=first, to_port=last,
                                   msg="Former value cannot be greater than the later")
        if upper in ("TCP", "UDP") and (first < 1 or last > 65535):
            raise InvalidPortRange(from_port=first, to_port=last,
                                   msg=f"Valid {upper} ports should be between 1-65535")
        if upper == "ICMP" and not (-1 <= first <= 255 and -1 <= last <= 255):
            raise InvalidPortRange(from_port=first, to_port=last,
                                   msg="For ICMP, the type:code must be valid")
        values.update(protocol=str(ip_protocol), from_port=first, to_port=last)
    elif cidr:
        return None
    return values
