"""Floating IPs with Neutron's semantics, for the network API (docs/network-api.md).

The same floating_ips rows the compute API's os-floating-ips proxy shows: a held
row (project_id set) is a floating IP, its id the row's uuid (new at each
allocation), its floating_network_id the external network it came from, its
port the server NIC (virtual interface) whose fixed IP it is NATed to.

Scope and policy here, with Neutron's rule names: a member sees and changes its
project's floating IPs (another project's are 404), a reader only sees them, an
admin anything. As Neutron, a port on a network made through the network API needs a
router with an interface on its subnet and its gateway on the floating IP's network
(ExternalGatewayForFloatingIPNotFound); the nova-network face's networks are routed
by their hosts and need none (docs/network-api.md, Routers).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from dataclasses import dataclass
from typing import Any

from novalet import exceptions, policy
from novalet.common.context import RequestContext
from novalet.db import floating_ips as db
from novalet.db import network as db_network
from novalet.db import networks as db_networks
from novalet.db import routers as db_routers
from novalet.db.models import FixedIp, Network
from novalet.network.api import NetworkAPI
from novalet.network.project_ids import check_project_id

LOG = logging.getLogger(__name__)


class FloatingIPNotFound(exceptions.NotFound):
    msg_fmt = "Floating IP %(floatingip_id)s could not be found"


class NetworkNotFound(exceptions.NotFound):
    msg_fmt = "Network %(net_id)s could not be found."


class PortNotFound(exceptions.NotFound):
    msg_fmt = "Port %(port_id)s could not be found."


class BadRequest(exceptions.Invalid):
    msg_fmt = "Bad %(resource)s request: %(msg)s."


class InvalidIpForNetwork(exceptions.Invalid):
    msg_fmt = ("IP address %(ip_address)s is not a valid IP for any of the subnets on the "
               "specified network.")


class IpAddressAlreadyAllocated(exceptions.Conflict):
    msg_fmt = "IP address %(ip)s already allocated in subnet %(subnet_id)s."


class IpAddressGenerationFailure(exceptions.Conflict):
    msg_fmt = "No more IP addresses available on network %(net_id)s."


class FloatingIPPortAlreadyAssociated(exceptions.Conflict):
    msg_fmt = ("Cannot associate floating IP %(floating_ip_address)s (%(fip_id)s) with port "
               "%(port_id)s using fixed IP %(fixed_ip)s, as that fixed IP already has a "
               "floating IP on external network %(net_id)s.")


class FloatingIPAutoAssigned(exceptions.Conflict):
    neutron_type = "Conflict"
    msg_fmt = ("Floating IP %(floatingip_id)s was given to its server at boot "
               "([network] auto_assign_floating_ip): it goes with the server; delete the "
               "server, or allocate another floating IP")


class ExternalGatewayForFloatingIPNotFound(exceptions.NotFound):
    neutron_type = "ExternalGatewayForFloatingIPNotFound"
    msg_fmt = ("External network %(external_network_id)s is not reachable from subnet "
               "%(subnet_id)s. Therefore, cannot associate Port %(port_id)s with a Floating "
               "IP.")


class OverQuota(exceptions.Conflict):
    msg_fmt = "Quota exceeded for resources: ['floatingip']."


@dataclass(frozen=True)
class FloatingIPView:
    """A floating IP with Neutron's fields."""

    id: str
    floating_ip_address: str
    floating_network_id: str | None
    router_id: str | None
    port_id: str | None
    fixed_ip_address: str | None
    status: str
    project_id: str
    description: str
    created_at: dt.datetime
    updated_at: dt.datetime | None

    @classmethod
    def of(cls, record: db.FloatingRecord, router_id: str | None = None) -> FloatingIPView:
        row = record.row
        return cls(id=row.uuid, floating_ip_address=row.address,
                   floating_network_id=record.network_uuid, router_id=router_id,
                   port_id=record.port_id, fixed_ip_address=record.fixed_address,
                   # an unbound port's: NATed nowhere until a server has the port
                   status="ACTIVE" if record.instance_uuid is not None else "DOWN",
                   project_id=row.project_id or "", description=row.description or "",
                   created_at=row.created_at, updated_at=row.updated_at)


_UNSET: Any = object()


class FloatingIPService:
    """List, show, create, update (associate) and delete floating IPs for a context."""

    def __init__(self, nova: NetworkAPI) -> None:
        self.nova = nova  # quotas, options and the host refresh of the network domain
        self.db = nova.db

    # --- reads --------------------------------------------------------------------

    async def list_floatingips(self, ctx: RequestContext) -> list[FloatingIPView]:
        records = await db.list_held(self.db, None if ctx.is_admin else ctx.project_id or "")
        routers = await db_routers.floating_routers(
            self.db, [r.row.id for r in records if r.row.fixed_ip_id is not None])
        return [FloatingIPView.of(r, routers.get(r.row.id)) for r in records
                if policy.authorize(ctx, "get_floatingip", r.row.project_id)]

    async def get_floatingip(self, ctx: RequestContext, floatingip_id: str) -> FloatingIPView:
        return await self._view(await self._visible(ctx, floatingip_id))

    async def _view(self, record: db.FloatingRecord) -> FloatingIPView:
        routers = await db_routers.floating_routers(self.db, [record.row.id])
        return FloatingIPView.of(record, routers.get(record.row.id))

    async def _visible(self, ctx: RequestContext, floatingip_id: str) -> db.FloatingRecord:
        record = await db.get_held(self.db, floatingip_id)
        if record is None or not policy.authorize(ctx, "get_floatingip",
                                                  record.row.project_id):
            raise FloatingIPNotFound(floatingip_id=floatingip_id)
        if not ctx.is_admin and record.row.project_id != ctx.project_id:
            raise FloatingIPNotFound(floatingip_id=floatingip_id)
        return record

    # --- writes -------------------------------------------------------------------

    async def create_floatingip(self, ctx: RequestContext, attrs: dict[str, Any]
                                ) -> FloatingIPView:
        """Allocate an address of floating_network_id (a given floating_ip_address:
        admin only by default) for the caller's project (an admin may name another),
        and with port_id associate it at once. Nothing is held when any step fails."""
        owner = self._owner(ctx, attrs)
        policy.enforce(ctx, "create_floatingip", owner)
        address = attrs.get("floating_ip_address")
        if address is not None:
            policy.enforce(ctx, "create_floatingip:floating_ip_address", owner)
        network = await self._external_network(ctx, str(attrs["floating_network_id"]))
        target = None
        if attrs.get("port_id") is not None:  # checked before anything is held
            target = await self._target(ctx, owner, str(attrs["port_id"]),
                                        attrs.get("fixed_ip_address"))
        try:
            row = await db.allocate(self.db, owner, network, _address(address),
                                    str(attrs.get("description", "")),
                                    self.nova.quotas.admit_floating_ip())
        except exceptions.QuotaExceeded:
            raise OverQuota() from None
        except db.AddressTaken:
            raise IpAddressAlreadyAllocated(ip=address, subnet_id=await self._subnet_of(
                network)) from None
        except db.AddressNotInNetwork:
            raise InvalidIpForNetwork(ip_address=address) from None
        except db.NetworkExhausted:
            raise IpAddressGenerationFailure(net_id=network.uuid) from None
        LOG.info("Floating IP %s (%s) allocated to project %s from network %s", row.uuid,
                 row.address, owner, network.uuid)
        if target is not None:
            try:
                await self._associate(await self._record(row.uuid), *target)
            except Exception:
                await db_network.release_floating_ip(self.db, row.id, owner=owner)
                raise
        return await self._view(await self._record(row.uuid))

    async def update_floatingip(self, ctx: RequestContext, floatingip_id: str,
                                attrs: dict[str, Any]) -> FloatingIPView:
        """port_id (with fixed_ip_address) associates, or moves, it; port_id null
        disassociates; description changes."""
        record = await self._visible(ctx, floatingip_id)
        policy.enforce(ctx, "update_floatingip", record.row.project_id)
        if "port_id" in attrs and record.row.auto_assigned:
            raise FloatingIPAutoAssigned(floatingip_id=floatingip_id)
        if "port_id" in attrs:
            if attrs["port_id"] is None:
                await self._disassociate(record)
            else:
                target = await self._target(ctx, record.row.project_id or "",
                                            str(attrs["port_id"]), attrs.get("fixed_ip_address"))
                await self._associate(record, *target)
        elif attrs.get("fixed_ip_address") is not None:
            raise BadRequest(resource="floatingip", msg="fixed_ip_address needs port_id")
        if "description" in attrs:
            await db.set_description(self.db, record.row.id, str(attrs["description"] or ""))
        return await self._view(await self._record(floatingip_id))

    async def delete_floatingip(self, ctx: RequestContext, floatingip_id: str) -> None:
        """Disassociate it (the hosts stop NATing it) and give the address back."""
        record = await self._visible(ctx, floatingip_id)
        policy.enforce(ctx, "delete_floatingip", record.row.project_id)
        if record.row.auto_assigned:
            raise FloatingIPAutoAssigned(floatingip_id=floatingip_id)
        if record.row.fixed_ip_id is not None:
            await self._disassociate(record)
        if not await db_network.release_floating_ip(self.db, record.row.id,
                                                    owner=record.row.project_id):
            raise db.FloatingIpMoved(address=record.row.address)
        LOG.info("Floating IP %s (%s) released", floatingip_id, record.row.address)

    # --- association --------------------------------------------------------------

    async def _target(self, ctx: RequestContext, owner: str, port_id: str,
                      fixed_address: Any) -> tuple[db.PortRecord, FixedIp]:
        """The port (a server NIC the caller may see) and which of its fixed IPs."""
        port = await db.port(self.db, port_id)
        if port is None or (not ctx.is_admin and port.project_id != ctx.project_id):
            raise PortNotFound(port_id=port_id)
        if port.project_id != owner:
            raise BadRequest(resource="floatingip", msg=(
                f"Cannot create floating IP and bind it to Port {port_id}, since that port "
                "is owned by a different tenant"))
        if fixed_address is not None:
            chosen = [f for f in port.fixed if f.address == fixed_address]
            if not chosen:
                raise BadRequest(resource="floatingip", msg=(
                    f"Port {port_id} does not have fixed ip {fixed_address}"))
            return port, chosen[0]
        if not port.fixed:
            raise BadRequest(resource="floatingip", msg=(
                f"Port {port_id} does not have any fixed IPv4 address"))
        if len(port.fixed) > 1:
            raise BadRequest(resource="floatingip", msg=(
                f"Port {port_id} has multiple fixed IPv4 addresses. Must provide a specific "
                "IPv4 address when assigning a floating IP"))
        return port, port.fixed[0]

    async def _associate(self, record: db.FloatingRecord, port: db.PortRecord,
                         fixed: FixedIp) -> None:
        row = record.row
        if row.fixed_ip_id == fixed.id:
            return
        reachable, subnet_id = await db_routers.reaches(self.db, fixed.network_id,
                                                        row.network_id)
        if not reachable:  # a network-API network reaches the outside by a router only
            raise ExternalGatewayForFloatingIPNotFound(
                external_network_id=record.network_uuid, subnet_id=subnet_id,
                port_id=port.vif.uuid)
        hosts = {port.host} if port.host else set()
        if record.instance_uuid:  # it moves: the host it leaves stops NATing it
            hosts.add(await db_network.instance_host(self.db, record.instance_uuid) or "")
        try:  # only if nobody changed it since it was read, and the fixed IP has none
            await db_network.associate_floating_ip(
                self.db, row.id, fixed.id, port.host,
                self.nova.conf.get("network", "public_interface") or None,
                owner=row.project_id, old_fixed_ip_id=row.fixed_ip_id, exclusive=True)
        except db.FixedIpHasFloating:
            raise FloatingIPPortAlreadyAssociated(
                floating_ip_address=row.address, fip_id=row.uuid, port_id=port.vif.uuid,
                fixed_ip=fixed.address, net_id=record.network_uuid) from None
        LOG.info("Floating IP %s now NATs to %s (port %s)", row.address, fixed.address,
                 port.vif.uuid)
        await self.nova.refresh_now(hosts - {""})

    async def _disassociate(self, record: db.FloatingRecord) -> None:
        if record.row.fixed_ip_id is None:
            return
        host = (await db_network.instance_host(self.db, record.instance_uuid)
                if record.instance_uuid else None)
        if not await db_network.disassociate_floating_ip(
                self.db, record.row.id, owner=record.row.project_id,
                fixed_ip_id=record.row.fixed_ip_id):
            raise db.FloatingIpMoved(address=record.row.address)
        LOG.info("Floating IP %s no longer NATs to %s", record.row.address,
                 record.fixed_address)
        await self.nova.refresh_now({host} if host else set())

    # --- helpers ------------------------------------------------------------------

    async def _record(self, floatingip_id: str) -> db.FloatingRecord:
        record = await db.get_held(self.db, floatingip_id)
        if record is None:
            raise FloatingIPNotFound(floatingip_id=floatingip_id)
        return record

    async def _external_network(self, ctx: RequestContext, network_id: str) -> Network:
        try:
            network = await db_network.get_network(self.db, network_id)
        except db_network.NetworkNotFound:
            raise NetworkNotFound(net_id=network_id) from None
        if not network.external:
            if not (ctx.is_admin or network.shared
                    or network.project_id in (None, ctx.project_id)):
                raise NetworkNotFound(net_id=network_id)
            raise BadRequest(resource="floatingip",
                             msg=f"Network {network_id} is not a valid external network")
        return network

    async def _subnet_of(self, network: Network) -> str:
        found = await db_networks.subnet_ids(self.db, [network.id])
        return (found.get(network.id) or ["?"])[0]

    @staticmethod
    def _owner(ctx: RequestContext, attrs: dict[str, Any]) -> str:
        return requested_owner(ctx, attrs, "floatingip", "a floating IP")


def requested_owner(ctx: RequestContext, attrs: dict[str, Any], resource: str,
                    what: str) -> str:
    """The project a create names (project_id or tenant_id; the caller's when neither),
    as Neutron checks it: another project's for an admin only; 400 otherwise."""
    given = {attrs[k] for k in ("project_id", "tenant_id") if attrs.get(k)}
    if len(given) > 1:
        raise BadRequest(resource=resource, msg="project_id and tenant_id differ")
    owner = str(given.pop()) if given else ctx.project_id or ""
    if owner != ctx.project_id and not ctx.is_admin:
        raise BadRequest(resource=resource, msg=(
            "Specifying 'project_id' or 'tenant_id' other than the authenticated project "
            "in request requires admin privileges"))
    if not owner:
        raise BadRequest(resource=resource, msg=f"{what} needs a project: use a "
                         "project-scoped token or give project_id")
    return check_project_id(owner)


def _address(value: Any) -> str | None:
    if value is None:
        return None
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        raise InvalidIpForNetwork(ip_address=value) from None
    return str(address)
