"""The network domain service: every rule about networks and fixed and floating IPs,
for every front-end (nova-network's API and managers in one place); security
groups come from network/security_groups.py.

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

from novalet import config, exceptions, policy
from novalet.common.context import RequestContext
from novalet.compute.quotas import QuotaEngine
from novalet.db import instances as db_instances
from novalet.db import external_networks as db_external
from novalet.db import floating_ips as db_floating
from novalet.db import network as db
from novalet.db import networks as db_networks
from novalet.db import routers as db_routers
from novalet.db import security_groups as db_groups
from novalet.db.engine import Database
from novalet.db.models import Network
from novalet.db.network import AddressRow, FixedRow, FloatingRow, InterfaceRow
from novalet.network import port_binding
from novalet.network.model import Vif
from novalet.network.security_groups import InvalidCidr, SecurityGroupsMixin, to_id

LOG = logging.getLogger(__name__)

MODES = ("flat", "flat_dhcp", "vlan")
# One fixed_ips (or floating_ips) row per address: keep networks small enough that
# creating one stays instant. /22 is 1024 addresses.
MAX_PREFIX_SIZE = 22
MIN_PREFIX_SIZE = 30
MAX_VLAN = 4094
BRIDGE_NAME_MAX = 15  # IFNAMSIZ - 1

Refresher = Callable[[set[str]], Awaitable[None]]
_UNSET: Any = object()


# --- errors -----------------------------------------------------------------------

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


class InterfaceNotFound(exceptions.NotFound):
    msg_fmt = "Port %(port_id)s is not attached to instance %(uuid)s."


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


class NetworkRequiresSubnet(exceptions.Invalid):
    msg_fmt = "Network %(uuid)s requires a subnet in order to boot instances on."


class ExternalNetworkNotBootable(exceptions.Invalid):
    msg_fmt = ("Network %(uuid)s is external: it gives floating IPs, not server addresses. "
               "Boot on a project network and associate a floating IP.")


class DuplicateAddressRequested(exceptions.Invalid):
    msg_fmt = "Fixed IP %(address)s is requested for two NICs; each needs its own."


class NoNetworkForInstance(exceptions.Conflict):
    msg_fmt = ("No network is available for project %(project_id)s; an administrator "
               "must create one (os-networks).")


class FixedIpHasFloatingIp(exceptions.Invalid):
    """400, as Nova over Neutron answers addFloatingIp for a fixed IP that has one."""
    msg_fmt = "%(reason)s"


class FloatingIpNotReachable(exceptions.Invalid):
    """400, as Nova over Neutron answers addFloatingIp when Neutron refuses the
    association because no router joins the server's network to the pool's."""
    msg_fmt = ("Unable to associate floating IP %(address)s to fixed IP %(fixed_address)s "
               "for instance %(id)s. Error: External network %(external_network_id)s is "
               "not reachable from subnet %(subnet_id)s. Therefore, cannot associate Port "
               "%(port_id)s with a Floating IP.")


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



class NetworkAPI(SecurityGroupsMixin):
    """Networks, addresses and security groups. Returned rows are detached."""

    def __init__(self, database: Database, conf: config.Config,
                 refresh_hosts: Refresher | None = None) -> None:
        self.db = database
        self.conf = conf
        self.refresh_hosts = refresh_hosts
        self.quotas = QuotaEngine(database, conf)
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
        (each an external network of its name; addresses missing from a pool are
        added, none are removed)."""
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
            _, added = await db_external.ensure_pool_network(self.db, pool.name, addresses,
                                                             hosts)
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
            "dhcp_start": str(dhcp_start), "enable_dhcp": self.mode != "flat",
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

    def next_vlan(self, existing: list[Network]) -> int:
        """The first VLAN from [network] vlan_start no network has."""
        return self._next_vlan(existing, int(self._opt("vlan_start")))

    async def list_networks(self, ctx: RequestContext) -> list[Network]:
        """Admins see every network; others their project's and unassigned ones."""
        return await db.list_networks(self.db, None if ctx.is_admin else ctx.project_id or "")

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
        400 when a network is unknown to the project, an address is invalid or taken
        or asked for twice. A network may repeat (a NIC each), as Nova over Neutron
        allows."""
        seen: set[str] = set()
        for network_uuid, address in requested:
            if address is not None and address in seen:
                raise DuplicateAddressRequested(address=address)
            seen.add(address or "")
            network = await self._network_for_request(project_id, network_uuid)
            if address is not None:
                if _ipv4_address(address) not in ipaddress.ip_network(str(network.cidr)):
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
        if network.cidr is None:
            raise NetworkRequiresSubnet(uuid=network_uuid)
        if network.external:
            raise ExternalNetworkNotBootable(uuid=network_uuid)
        return network

    async def check_requested_ports(self, project_id: str, port_ids: Sequence[str],
                                    max_count: int, attach: bool = False) -> None:
        """A boot's ports: the project's, bound to no server (network/port_binding.py);
        attach: an unknown port is a 404 (os-interface), not a boot's 400."""
        try:
            await port_binding.check_ports(self.db, project_id, port_ids, max_count,
                                           self.mode == "vlan")
        except port_binding.PortNotFound as exc:
            if attach:
                raise port_binding.AttachPortNotFound(port_id=exc.kwargs["port_id"]) from None
            raise

    async def allocate_for_instance(
            self, instance_uuid: str, project_id: str, host: str | None, hostname: str, *,
            user_id: str | None = None,
            requested_networks: Sequence[tuple[str, str | None]] | None = None,
            requested_ports: Sequence[str] = ()) -> list[Vif]:
        """Give an instance its NICs: one per requested network (uuid, fixed address
        or None), else one on the default network (vlan: the project's own, created
        on first use). Each NIC gets a unique MAC and a free fixed IP. The instance
        joins the project's default security group unless it is in a group already;
        with auto_assign_floating_ip its first address gets a floating IP.

        Ports asked for are bound to it first (their groups become its own; NICs
        are in creation order, so they come before the new ones).

        Idempotent: an instance that has NICs already gets them back (their host
        updated), so a rescheduled build can call it again. On failure nothing is
        left allocated (and the ports are unbound again)."""
        existing = (await db.interfaces(self.db, [instance_uuid])).get(instance_uuid)
        if existing:
            await db.set_interfaces_host(self.db, instance_uuid, host)
            return await self.vifs_for_instance(instance_uuid)
        try:
            if requested_ports:
                await port_binding.bind(self.db, instance_uuid, project_id, host,
                                        requested_ports, self.mode == "vlan")
                await db.set_interfaces_host(self.db, instance_uuid, host)
            if requested_networks:
                targets = [(await self._network_for_request(project_id, uuid), address)
                           for uuid, address in requested_networks]
            else:
                targets = [] if requested_ports else [(await self._default_network(project_id),
                                                       None)]
            for network, address in targets:
                await db.allocate_interface(self.db, instance_uuid, network.id, host, address)
            if targets:  # a port keeps the groups it carried (none: port security off)
                default = await self._default_group(project_id, user_id)
                await db_groups.add_instance_groups(self.db, [instance_uuid], [default.id],
                                                    only_if_none=True)
            rows = (await db.interfaces(self.db, [instance_uuid]))[instance_uuid]
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
        # A network without a subnet (made by the network API) is no default: it
        # has no addresses to give.
        networks = [n for n in await db.list_networks(self.db, project_id)
                    if n.cidr and not n.external]  # external: floating IPs only
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
            taken = [ipaddress.ip_network(n.cidr) for n in existing if n.cidr]
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

    async def instance_moved(self, old_host: str | None, new_host: str | None) -> None:
        """Have the hosts an instance left and joined apply their networking once its
        record names the new one: the host it left stops NATing its floating IPs and
        quarantines a guest of it still running there (an evacuation's failed host,
        whose compute is down but not its network service)."""
        await self._refresh({host for host in (old_host, new_host) if host})

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
        await self._refresh_around(instance_uuid)
        return [self._vif(row) for row in rows if row.fixed_ip is not None]

    async def add_interface(self, instance_uuid: str, project_id: str, host: str | None,
                            network_uuid: str | None, address: str | None = None,
                            port_id: str | None = None) -> Vif:
        """One more NIC for an instance: the port asked for (bound to it, its groups
        joining the instance's), or a new one on the network asked for (by uuid; else
        the project's default), with the fixed address asked for or a free one."""
        if port_id is not None:
            return await self._attach_port(instance_uuid, project_id, host, port_id)
        if network_uuid is not None:
            network = await self._network_for_request(project_id, network_uuid)
        else:
            network = await self._default_network(project_id)
        if address is not None:
            _fixed_address(address)
        row = await db.allocate_interface(self.db, instance_uuid, network.id, host, address)
        assert row.fixed_ip is not None
        LOG.info("Allocated %s (%s) to instance %s", row.fixed_ip.address, network.label,
                 instance_uuid)
        await self._refresh(await db.project_hosts(self.db, project_id))
        return self._vif(row)

    async def _attach_port(self, instance_uuid: str, project_id: str, host: str | None,
                           port_id: str) -> Vif:
        await port_binding.check_ports(self.db, project_id, [port_id], 1, self.mode == "vlan")
        await port_binding.bind(self.db, instance_uuid, project_id, host, [port_id],
                                self.mode == "vlan")
        await db.set_interfaces_host(self.db, instance_uuid, host)
        rows = (await db.interfaces(self.db, [instance_uuid]))[instance_uuid]
        row = next(r for r in rows if r.vif.uuid == port_id)
        LOG.info("Bound port %s to instance %s", port_id, instance_uuid)
        await self._refresh(await db.project_hosts(self.db, project_id))
        return self._vif(row)

    async def remove_interface(self, instance_uuid: str, vif_uuid: str) -> Vif:
        """Release one NIC of an instance; InterfaceNotFound when it has no such NIC."""
        row = await db.deallocate_interface(self.db, instance_uuid, vif_uuid)
        if row is None or row.fixed_ip is None:
            raise InterfaceNotFound(port_id=vif_uuid, uuid=instance_uuid)
        LOG.info("Released %s of instance %s", row.fixed_ip.address, instance_uuid)
        await self._refresh_around(instance_uuid)
        return self._vif(row)

    async def subnet_ids(self, network_uuids: Sequence[str]) -> dict[str, str]:
        """network uuid -> its subnet's uuid (the network API's), for those with one."""
        return await db_networks.subnet_uuids(self.db, network_uuids)

    async def vifs_for_instance(self, instance_uuid: str) -> list[Vif]:
        rows = (await db.interfaces(self.db, [instance_uuid])).get(instance_uuid, [])
        return [self._vif(row) for row in rows if row.fixed_ip is not None]

    async def server_networking(self, ctx: RequestContext, instance_uuids: Sequence[str]
                                ) -> dict[str, ServerNetworking]:
        """Addresses and security group names of many servers in two queries (for
        server lists); servers without any are absent, and so are servers ctx may not
        see (a non-admin's are those of its project)."""
        if not ctx.is_admin:
            instance_uuids = await db_instances.uuids_of_project(
                self.db, instance_uuids, ctx.project_id or "")
        result: dict[str, ServerNetworking] = {}
        for row in await db.addresses(self.db, instance_uuids):
            result.setdefault(row.instance_uuid, ServerNetworking()).addresses.append(row)
        for uuid, names in (await db_groups.instance_group_names(self.db, instance_uuids)).items():
            result.setdefault(uuid, ServerNetworking()).security_groups = names
        return result

    def _vif(self, row: InterfaceRow) -> Vif:
        return vif_from_row(row, dhcp=self.mode != "flat")

    # --- fixed IPs -----------------------------------------------------------------

    async def get_fixed_ip(self, ctx: RequestContext, address: str) -> FixedRow:
        """Any project's fixed address with its holder: os_compute_api:os-fixed-ips
        (admin) only, whatever front-end asks (403 otherwise)."""
        policy.enforce(ctx, "os_compute_api:os-fixed-ips")
        _fixed_address(address)
        return await db.fixed_ip_by_address(self.db, address)

    async def set_fixed_ip_reserved(self, ctx: RequestContext, address: str,
                                    reserved: bool) -> None:
        policy.enforce(ctx, "os_compute_api:os-fixed-ips")
        _fixed_address(address)
        await db.set_fixed_ip_reserved(self.db, address, reserved)

    # --- floating IPs ----------------------------------------------------------------

    async def floating_ip_pools(self) -> list[str]:
        return await db.floating_pools(self.db)

    async def _pool_of_network(self, network_id: str) -> str:
        """The pool an external network's id stands for (404 otherwise)."""
        try:
            network = await db.get_network(self.db, network_id)
        except db.NetworkNotFound:
            raise FloatingIpPoolNotFound(pool=network_id) from None
        if not network.external or network.label not in await db.floating_pools(self.db):
            raise FloatingIpPoolNotFound(pool=network_id)
        return str(network.label)

    async def allocate_floating_ip(self, ctx: RequestContext, pool: str | None = None
                                   ) -> FloatingRow:
        """A free floating IP of `pool` (default_floating_pool) for ctx's project;
        `pool` names it or is its external network's id, as Nova over Neutron takes."""
        pool = pool or str(self._opt("default_floating_pool"))
        if pool not in await db.floating_pools(self.db):
            pool = await self._pool_of_network(pool)
        floating = await db.allocate_floating_ip(self.db, ctx.project_id or "", pool,
                                                 admit=self.quotas.admit_floating_ip())
        return FloatingRow(floating, None, None)

    async def list_floating_ips(self, ctx: RequestContext) -> list[FloatingRow]:
        return await db.list_floating_ips(self.db, ctx.project_id or "")

    async def get_floating_ip(self, ctx: RequestContext, floating_id: str | int) -> FloatingRow:
        """The floating IP if ctx's project holds it (admins: any); else 404."""
        number = to_id(floating_id)
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
        if not await db.release_floating_ip(self.db, row.floating.id,
                                            owner=row.floating.project_id):
            raise db_floating.FloatingIpMoved(address=row.floating.address)

    async def associate_floating_ip(self, ctx: RequestContext, instance: Any, address: str,
                                    fixed_address: str | None = None) -> None:
        """NAT floating `address` to a fixed IP of the instance (the first, or
        fixed_address). An address associated elsewhere is moved."""
        rows = [r for rs in (await db.interfaces(self.db, [instance.uuid])).values()
                for r in rs if r.fixed_ip is not None]
        if not rows:
            raise InstanceHasNoFixedIp()
        nic: InterfaceRow | None = rows[0]
        if fixed_address is not None:
            nic = next((r for r in rows if r.fixed_ip is not None
                        and r.fixed_ip.address == fixed_address), None)
            if nic is None:
                raise FixedAddressNotOnInstance()
        assert nic is not None and nic.fixed_ip is not None
        fixed = nic.fixed_ip
        row = await db.get_floating_ip_by_address(self.db, address)
        floating = row.floating
        if floating.auto_assigned:
            return
        self._check_owner(ctx, floating.project_id, floating.address)
        await self._check_reaches(instance.uuid, nic, row)
        hosts = {instance.host} if instance.host else set()
        if floating.fixed_ip_id is not None:
            if row.fixed_address == fixed.address:
                return
            if row.instance_uuid:
                hosts.add(await db.instance_host(self.db, row.instance_uuid) or "")
        try:  # one floating IP per fixed IP and pool, as the network API holds
            await db.associate_floating_ip(self.db, floating.id, fixed.id, instance.host,
                                           self._opt("public_interface") or None,
                                           owner=floating.project_id,
                                           old_fixed_ip_id=floating.fixed_ip_id,
                                           exclusive=True)
        except db_floating.FixedIpHasFloating as error:
            raise FixedIpHasFloatingIp(reason=str(error)) from None
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
        if not await db.disassociate_floating_ip(self.db, row.floating.id,
                                                 owner=row.floating.project_id,
                                                 fixed_ip_id=row.floating.fixed_ip_id):
            raise db_floating.FloatingIpMoved(address=row.floating.address)
        LOG.info("Floating IP %s no longer NATs to %s", row.floating.address,
                 row.fixed_address)
        await self._refresh({host} if host else set())

    async def _check_reaches(self, instance_uuid: str, nic: InterfaceRow,
                             row: FloatingRow) -> None:
        """The router check the network API's floating IPs make: a network made
        there reaches the pool's external network only through a router."""
        assert nic.fixed_ip is not None
        reachable, subnet_id = await db_routers.reaches(self.db, nic.fixed_ip.network_id,
                                                        row.floating.network_id)
        if not reachable:
            held = await db_floating.get_held(self.db, row.floating.uuid)
            external = held.network_uuid if held is not None else None
            raise FloatingIpNotReachable(
                address=row.floating.address, fixed_address=nic.fixed_ip.address,
                id=instance_uuid, external_network_id=external, subnet_id=subnet_id,
                port_id=nic.vif.uuid)

    @staticmethod
    def _check_owner(ctx: RequestContext, project_id: str | None, address: str) -> None:
        if not ctx.is_admin and project_id != ctx.project_id:
            raise FloatingIpNotOwned(address=address)

    # --- refresh -------------------------------------------------------------------

    async def _refresh_around(self, instance_uuid: str) -> None:
        """Refresh the hosts of the instance's project and its own host."""
        owner = await db.instance_owner(self.db, instance_uuid)
        if owner is not None:
            project_id, host = owner
            hosts = await db.project_hosts(self.db, project_id)
            await self._refresh(hosts | {host} if host else hosts)

    async def refresh_now(self, hosts: set[str]) -> None:
        """Have these hosts apply their networking now (a floating IP moved)."""
        await self._refresh(hosts)

    async def refresh_every_host(self) -> None:
        """Have every host re-read the networks it serves (one was added or removed)."""
        await self._refresh({"*"})

    async def _refresh(self, hosts: set[str]) -> None:
        await refresh_hosts(self.refresh_hosts, hosts)


async def refresh_hosts(refresher: Refresher | None, hosts: set[str]) -> None:
    """Ask `hosts` ("*": every host) to re-read their networking; a failure is logged,
    not raised: the change is recorded and the hosts catch up at their next sync."""
    if not hosts or refresher is None:
        return
    try:
        await refresher(hosts)
    except Exception:
        LOG.exception("Could not ask hosts %s to refresh their networking",
                      ", ".join(sorted(hosts)))


# --- helpers shared with state.py -----------------------------------------------------

def vif_from_row(row: InterfaceRow, dhcp: bool) -> Vif:
    """A stored NIC (which must have its fixed IP) as hosts and guests see it."""
    network = row.network
    assert row.fixed_ip is not None and network.cidr is not None and network.gateway is not None
    gateway = row.host_address or network.gateway  # multi_host: the guest's own host
    return Vif(id=row.vif.uuid, address=row.vif.address, network_id=network.uuid,
               network_label=network.label, bridge=network.bridge,
               fixed_ip=row.fixed_ip.address, cidr=network.cidr, gateway=gateway,
               dns=dns_servers(network, gateway), vlan=network.vlan,
               dhcp=dhcp and network.enable_dhcp, mtu=network.mtu,
               floating_ips=list(row.floating_ips))


def dns_servers(network: Network, gateway: str | None = None) -> list[str]:
    """The network's DNS servers; the gateway (the guest's own) when none is configured."""
    servers = [s for s in (network.dns1, network.dns2) if s]
    fallback = gateway or network.gateway
    return servers or ([fallback] if fallback else [])


def _fixed_address(address: str) -> None:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise exceptions.Invalid(f"Fixed IP address {address} is invalid.") from None
