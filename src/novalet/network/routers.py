"""Routers with Neutron's semantics, for the network API (docs/network-api.md, Routers).

A router belongs to a project. Its external gateway is an address of an external
network (a floating_ips row the router holds); its interfaces join subnets to it
at each subnet's gateway address. The hosts serving an attached network SNAT what
its guests send to the outside to the gateway address when SNAT is on; a network
made through the network API reaches the outside only so (network/state.py).

Scope and policy here, with Neutron's rule names: a member sees and changes its
project's routers (another project's are 404), a reader only sees them, an admin
anything; enable_snat and external_fixed_ips are the admin's by default.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from novalet import exceptions, policy
from novalet.common.context import RequestContext
from novalet.db import network as db_network
from novalet.db import routers as db
from novalet.db import subnets as db_subnets
from novalet.db.models import Network
from novalet.network.api import NetworkAPI
# the errors routers share with floating IPs (Neutron's types, one class each)
from novalet.network.floating_ips import (BadRequest, InvalidIpForNetwork,
                                          IpAddressAlreadyAllocated,
                                          IpAddressGenerationFailure, NetworkNotFound,
                                          requested_owner)

LOG = logging.getLogger(__name__)


class RouterNotFound(exceptions.NotFound):
    neutron_type = "RouterNotFound"
    msg_fmt = "Router %(router_id)s could not be found"


class RouterInUse(exceptions.Conflict):
    neutron_type = "RouterInUse"
    msg_fmt = "Router %(router_id)s %(reason)s"


class RouterInterfaceNotFoundForSubnet(exceptions.NotFound):
    neutron_type = "RouterInterfaceNotFoundForSubnet"
    msg_fmt = "Router %(router_id)s has no interface on subnet %(subnet_id)s"


class RouterInterfaceNotFound(exceptions.NotFound):
    neutron_type = "RouterInterfaceNotFound"
    msg_fmt = "Router %(router_id)s does not have an interface with id %(port_id)s"


class SubnetNotFound(exceptions.NotFound):
    msg_fmt = "Subnet %(subnet_id)s could not be found."


class RouterExternalGatewayInUseByFloatingIp(exceptions.Conflict):
    neutron_type = "RouterExternalGatewayInUseByFloatingIp"
    msg_fmt = ("Gateway cannot be updated for router %(router_id)s, since a gateway to "
               "external network %(net_id)s is required by one or more floating IPs.")


class RouterInterfaceInUseByFloatingIP(exceptions.Conflict):
    neutron_type = "RouterInterfaceInUseByFloatingIP"
    msg_fmt = ("Router interface for subnet %(subnet_id)s on router %(router_id)s cannot be "
               "deleted, as it is required by one or more floating IPs.")


class OverQuota(exceptions.Conflict):
    msg_fmt = "Quota exceeded for resources: ['router']."


@dataclass(frozen=True)
class RouterView:
    """A router with Neutron's fields."""

    id: str
    name: str
    description: str
    admin_state_up: bool
    status: str
    external_gateway_info: dict[str, Any] | None
    project_id: str
    created_at: dt.datetime
    updated_at: dt.datetime | None

    @classmethod
    def of(cls, record: db.RouterRecord) -> RouterView:
        row = record.row
        gateway = None
        if record.gw_network_id is not None:
            fixed = [{"subnet_id": record.gw_subnet_id, "ip_address": record.gw_address}]
            gateway = {"network_id": record.gw_network_id,
                       "enable_snat": bool(row.enable_snat),
                       "external_fixed_ips": fixed if record.gw_address else []}
        return cls(id=row.uuid, name=row.name, description=row.description,
                   admin_state_up=bool(row.admin_state_up),
                   status="ACTIVE" if row.admin_state_up else "DOWN",
                   external_gateway_info=gateway, project_id=row.project_id,
                   created_at=row.created_at, updated_at=row.updated_at)


@dataclass(frozen=True)
class InterfaceInfo:
    """What add_router_interface and remove_router_interface answer."""

    router_id: str
    project_id: str
    port_id: str
    subnet_id: str
    network_id: str


class RouterService:
    """List, show, create, update and delete routers; add and remove interfaces."""

    def __init__(self, nova: NetworkAPI) -> None:
        self.nova = nova  # options and the host refresh of the network domain
        self.db = nova.db

    # --- reads --------------------------------------------------------------------

    async def list_routers(self, ctx: RequestContext) -> list[RouterView]:
        records = await db.list_routers(self.db, None if ctx.is_admin else ctx.project_id or "")
        return [RouterView.of(r) for r in records
                if policy.authorize(ctx, "get_router", r.row.project_id)]

    async def get_router(self, ctx: RequestContext, router_id: str) -> RouterView:
        return RouterView.of(await self._visible(ctx, router_id))

    async def _visible(self, ctx: RequestContext, router_id: str) -> db.RouterRecord:
        record = await db.get_router(self.db, router_id)
        if record is None or not policy.authorize(ctx, "get_router", record.row.project_id):
            raise RouterNotFound(router_id=router_id)
        if not ctx.is_admin and record.row.project_id != ctx.project_id:
            raise RouterNotFound(router_id=router_id)
        return record

    # --- writes -------------------------------------------------------------------

    async def create_router(self, ctx: RequestContext, attrs: dict[str, Any]) -> RouterView:
        """A router of the caller's project (an admin may name another), with the
        external gateway asked for (its address held at once); nothing is made when
        any check fails."""
        owner = self._owner(ctx, attrs)
        policy.enforce(ctx, "create_router", owner)
        gateway = None
        if attrs.get("external_gateway_info"):
            gateway = await self._gateway(ctx, "create_router", owner,
                                          attrs["external_gateway_info"])
        values = {"project_id": owner, "name": str(attrs.get("name") or ""),
                  "description": str(attrs.get("description") or ""),
                  "admin_state_up": bool(attrs.get("admin_state_up", True))}
        try:
            # the project's own limit (set through the quotas API), else [quota] routers
            limit = (await self.nova.quotas.limits(owner))["routers"]
            record = await db.create_router(self.db, values, gateway, limit)
        except db.TooManyRouters:
            raise OverQuota() from None
        except (db.GatewayAddressTaken, db.GatewayAddressNotInNetwork,
                db.GatewayNetworkExhausted) as exc:
            raise self._gateway_error(exc, gateway) from None
        LOG.info("Router %s created for project %s", record.row.uuid, owner)
        return RouterView.of(record)

    async def update_router(self, ctx: RequestContext, router_id: str,
                            attrs: dict[str, Any]) -> RouterView:
        """name, description, admin_state_up; external_gateway_info set (moved, or
        only enable_snat changed) or cleared (null or {})."""
        record = await self._visible(ctx, router_id)
        owner = record.row.project_id
        policy.enforce(ctx, "update_router", owner)
        values: dict[str, Any] = {k: (bool(attrs[k]) if k == "admin_state_up"
                                      else str(attrs[k] or ""))
                                  for k in ("name", "description", "admin_state_up")
                                  if k in attrs}
        gateway: Any = db.KEEP
        if "external_gateway_info" in attrs:
            info = attrs["external_gateway_info"]
            gateway = await self._gateway(ctx, "update_router", owner, info) if info else None
            if gateway is None or gateway.network.uuid != record.gw_network_id:
                await self._check_gateway_unused(record)
        try:
            changed = await db.update_router(self.db, router_id, values, gateway)
        except db.RouterGone:
            raise RouterNotFound(router_id=router_id) from None
        except (db.GatewayAddressTaken, db.GatewayAddressNotInNetwork,
                db.GatewayNetworkExhausted) as exc:
            raise self._gateway_error(exc, gateway) from None
        if "external_gateway_info" in attrs or "admin_state_up" in values:
            await self._refresh(changed)
        return RouterView.of(changed)

    async def delete_router(self, ctx: RequestContext, router_id: str) -> None:
        """RouterInUse (409) while a subnet is attached; its gateway address goes back."""
        record = await self._visible(ctx, router_id)
        policy.enforce(ctx, "delete_router", record.row.project_id)
        try:
            await db.delete_router(self.db, router_id)
        except db.RouterGone:
            raise RouterNotFound(router_id=router_id) from None
        except db.HasInterfaces:
            raise RouterInUse(router_id=router_id, reason="still has ports") from None
        LOG.info("Router %s deleted", router_id)

    # --- interfaces ---------------------------------------------------------------

    async def add_interface(self, ctx: RequestContext, router_id: str,
                            body: dict[str, Any]) -> InterfaceInfo:
        """Attach a subnet (by subnet_id) at its gateway address."""
        record = await self._visible(ctx, router_id)
        owner = record.row.project_id
        policy.enforce(ctx, "add_router_interface", owner)
        subnet_id, port_id = _interface_keys(body)
        if port_id is not None:
            raise BadRequest(resource="router", msg=(
                "interfaces are added by subnet_id here: the router takes the subnet's "
                "gateway address (a port of your own can't be a router interface)"))
        assert subnet_id is not None
        subnet, network = await self._subnet(ctx, subnet_id)
        if network.external:
            raise BadRequest(resource="router", msg=(
                f"Subnet {subnet_id} is on external network {network.uuid}: make it the "
                "router's gateway instead"))
        if not subnet.gateway_ip:
            raise BadRequest(resource="router",
                             msg=f"Subnet {subnet_id} does not have a gateway IP")
        if not ctx.is_admin and (network.project_id or subnet.project_id) != owner:
            raise BadRequest(resource="router", msg=(
                f"Subnet {subnet_id} belongs to another project than router {router_id}: "
                "a router's interfaces are on its project's subnets"))
        attached = next((i for i in record.interfaces if i.subnet_id == subnet_id), None)
        if attached is not None:
            raise BadRequest(resource="router",
                             msg=f"Router already has a port on subnet {subnet_id}")
        try:
            port = await db.add_interface(self.db, router_id, subnet.id)
        except db.RouterGone:
            raise RouterNotFound(router_id=router_id) from None
        except db.SubnetAttached:
            raise BadRequest(resource="router", msg=(
                f"Subnet {subnet_id} is attached to another router already: a subnet's "
                "gateway address is one router's interface")) from None
        LOG.info("Subnet %s attached to router %s", subnet_id, router_id)
        await self.nova.refresh_every_host()
        return InterfaceInfo(router_id, owner, port, subnet_id, network.uuid)

    async def remove_interface(self, ctx: RequestContext, router_id: str,
                               body: dict[str, Any]) -> InterfaceInfo:
        """Detach the interface on subnet_id or with port_id; refused while a
        floating IP of the router's gateway network NATs to an address of it."""
        record = await self._visible(ctx, router_id)
        owner = record.row.project_id
        policy.enforce(ctx, "remove_router_interface", owner)
        subnet_id, port_id = _interface_keys(body)
        found = [i for i in record.interfaces
                 if (subnet_id is None or i.subnet_id == subnet_id)
                 and (port_id is None or i.port_id == port_id)]
        if not found:
            if port_id is not None:
                raise RouterInterfaceNotFound(router_id=router_id, port_id=port_id)
            raise RouterInterfaceNotFoundForSubnet(router_id=router_id, subnet_id=subnet_id)
        interface = found[0]
        if record.gw_network_id and await self._floating_through(record, [interface]):
            raise RouterInterfaceInUseByFloatingIP(subnet_id=interface.subnet_id,
                                                   router_id=router_id)
        try:
            await db.remove_interface(self.db, router_id, subnet_uuid=interface.subnet_id,
                                      port_uuid=interface.port_id)
        except db.RouterGone:
            raise RouterNotFound(router_id=router_id) from None
        except db.InterfaceGone:
            raise RouterInterfaceNotFoundForSubnet(router_id=router_id,
                                                   subnet_id=interface.subnet_id) from None
        LOG.info("Subnet %s detached from router %s", interface.subnet_id, router_id)
        await self.nova.refresh_every_host()
        return InterfaceInfo(router_id, owner, interface.port_id, interface.subnet_id,
                             interface.network_id)

    # --- helpers ------------------------------------------------------------------

    async def _gateway(self, ctx: RequestContext, action: str, owner: str,
                       info: Any) -> db.Gateway:
        """The asked gateway, checked: an external network the caller may see, an
        address of it (admin only by default), enable_snat (admin only to turn off)."""
        if not isinstance(info, dict) or not info.get("network_id"):
            raise BadRequest(resource="router", msg=(
                "external_gateway_info needs network_id (or null to clear the gateway)"))
        policy.enforce(ctx, f"{action}:external_gateway_info", owner)
        policy.enforce(ctx, f"{action}:external_gateway_info:network_id", owner)
        network = await self._external_network(ctx, str(info["network_id"]))
        enable_snat = info.get("enable_snat", True)
        if not isinstance(enable_snat, bool):
            raise BadRequest(resource="router", msg=f"'{enable_snat}' is not a valid boolean "
                             "value for enable_snat")
        if "enable_snat" in info:
            policy.enforce(ctx, f"{action}:external_gateway_info:enable_snat", owner)
        address = None
        fixed = info.get("external_fixed_ips")
        if fixed:
            policy.enforce(ctx, f"{action}:external_gateway_info:external_fixed_ips", owner)
            address = await self._gateway_address(network, fixed)
        return db.Gateway(network, address, enable_snat)

    async def _gateway_address(self, network: Network, fixed: Any) -> str | None:
        if not isinstance(fixed, list) or len(fixed) != 1 or not isinstance(fixed[0], dict):
            raise BadRequest(resource="router", msg=(
                "external_fixed_ips takes one entry here ({'ip_address': ...} and/or "
                "{'subnet_id': ...}): a gateway has one IPv4 address"))
        entry = fixed[0]
        subnets = {s.uuid for s in await db_subnets.network_subnets(self.db, network.uuid)}
        if entry.get("subnet_id") is not None and entry["subnet_id"] not in subnets:
            raise BadRequest(resource="router", msg=(
                f"Subnet {entry['subnet_id']} is not a subnet of network {network.uuid}"))
        address = entry.get("ip_address")
        return None if address is None else str(address)

    async def _external_network(self, ctx: RequestContext, network_id: str) -> Network:
        try:
            network = await db_network.get_network(self.db, network_id)
        except db_network.NetworkNotFound:
            raise NetworkNotFound(net_id=network_id) from None
        if not network.external:
            if not (ctx.is_admin or network.shared
                    or network.project_id in (None, ctx.project_id)):
                raise NetworkNotFound(net_id=network_id)
            raise BadRequest(resource="router",
                             msg=f"Network {network_id} is not a valid external network")
        return network

    async def _subnet(self, ctx: RequestContext, subnet_id: str) -> tuple[Any, Network]:
        try:
            subnet, network = await db_subnets.get_subnet(self.db, subnet_id)
        except db_subnets.SubnetNotFound:
            raise SubnetNotFound(subnet_id=subnet_id) from None
        visible = (ctx.is_admin or subnet.project_id == ctx.project_id or network.shared
                   or network.external or network.project_id in (None, ctx.project_id))
        if not visible:
            raise SubnetNotFound(subnet_id=subnet_id)
        return subnet, network

    async def _check_gateway_unused(self, record: db.RouterRecord) -> None:
        if record.gw_network_id and await self._floating_through(record, record.interfaces):
            raise RouterExternalGatewayInUseByFloatingIp(router_id=record.row.uuid,
                                                         net_id=record.gw_network_id)

    async def _floating_through(self, record: db.RouterRecord,
                                interfaces: tuple[db.InterfaceRecord, ...] |
                                list[db.InterfaceRecord]) -> bool:
        """Whether a floating IP of the gateway's network NATs to an address of
        these interfaces' networks that needs this router (a network-API network)."""
        return await db.floating_through(
            self.db, record.gw_network_id or "", [i.network_id for i in interfaces])

    async def _refresh(self, record: db.RouterRecord) -> None:
        if record.interfaces:
            await self.nova.refresh_every_host()

    @staticmethod
    def _gateway_error(exc: Exception, gateway: Any) -> Exception:
        network = gateway.network.uuid if gateway is not None else "?"
        if isinstance(exc, db.GatewayAddressTaken):
            return IpAddressAlreadyAllocated(ip=gateway.address, subnet_id=network)
        if isinstance(exc, db.GatewayAddressNotInNetwork):
            return InvalidIpForNetwork(ip_address=gateway.address)
        return IpAddressGenerationFailure(net_id=network)

    @staticmethod
    def _owner(ctx: RequestContext, attrs: dict[str, Any]) -> str:
        return requested_owner(ctx, attrs, "router", "a router")


def _interface_keys(body: Any) -> tuple[str | None, str | None]:
    if not isinstance(body, dict):
        raise BadRequest(resource="router", msg="the body must be an object")
    subnet_id, port_id = body.get("subnet_id"), body.get("port_id")
    if subnet_id is None and port_id is None:
        raise BadRequest(resource="router", msg="Either subnet_id or port_id must be "
                         "specified")
    return (None if subnet_id is None else str(subnet_id),
            None if port_id is None else str(port_id))
