"""Routers' interfaces and gateways as ports of the network API, read-only
(docs/network-api.md, Ports and Routers).

Clients (Ansible's openstack.cloud.router, Tempest, `openstack port list --router`)
find a router's interfaces by listing ports with `device_id=<router>`. Here an
interface is a router_interfaces row at its subnet's gateway address and a gateway
is the floating_ips row the router holds, not virtual_interfaces rows, so this
module shows them in the ports' shape: an interface to whoever sees the router, a
gateway (project "", as Neutron shows it) to admins only. They change only through
the router (add/remove_router_interface, external_gateway_info).
"""

from __future__ import annotations

import hashlib
from typing import Any

from novalet import exceptions, policy
from novalet.common.context import RequestContext
from novalet.db import routers as db
from novalet.db.engine import Database
from novalet.network import port_checks as checks
from novalet.network.port_info import PortInfo

INTERFACE_OWNER = "network:router_interface"
GATEWAY_OWNER = "network:router_gateway"
# The router's work is done by every host serving the network (its nftables), not by
# one agent's host: Neutron shows such a (DVR) port unbound to a host, "distributed".
VIF_TYPE = "distributed"


class L3PortInUse(checks.NeutronNamed, exceptions.Conflict):
    msg_fmt = ("Port %(port_id)s has owner %(device_owner)s and therefore cannot be "
               "deleted directly via the port API. Use the router's "
               "remove_router_interface (or clear its external_gateway_info) instead.")


class RouterPortInUse(checks.NeutronNamed, exceptions.Conflict):
    """Neutron would let a router port's name and description change; here the
    port is the router's row, which has neither."""

    msg_fmt = ("Port %(port_id)s has owner %(device_owner)s (router %(router_id)s) and "
               "can't be updated through the port API: change the router instead.")


def mac_of(port_id: str) -> str:
    """A made-up MAC, stable for the port: fa:16:3e (unicast, locally administered, as
    Neutron's) and three bytes of the id's hash. No frame carries it: the hosts answer
    for the gateway address with their bridge's own MAC."""
    tail = hashlib.sha256(port_id.encode()).digest()[:3]
    return "fa:16:3e:" + ":".join(f"{b:02x}" for b in tail)


def ports_of(ctx: RequestContext, record: db.RouterRecord) -> list[PortInfo]:
    """The router's interfaces the caller may see, and its gateway for an admin."""
    router = record.row
    if not policy.authorize(ctx, "get_port", router.project_id, {"project_id": router.project_id}):
        return []
    if not ctx.is_admin and router.project_id != ctx.project_id:
        return []
    status = "ACTIVE" if router.admin_state_up else "DOWN"
    ports = [_port(i.port_id, i.network_id, router.project_id, INTERFACE_OWNER, router.uuid,
                   {"subnet_id": i.subnet_id, "ip_address": i.ip_address or ""}, status,
                   i.created_at or router.created_at)
             for i in record.interfaces]
    if ctx.is_admin and record.gw_port_id and record.gw_network_id:
        fixed = {"subnet_id": record.gw_subnet_id or "", "ip_address": record.gw_address or ""}
        ports.append(_port(record.gw_port_id, record.gw_network_id, "", GATEWAY_OWNER,
                           router.uuid, fixed, status,
                           router.updated_at or router.created_at))
    return ports


def _port(port_id: str, network_id: str, project_id: str, owner: str, router_id: str,
          fixed: dict[str, str], status: str, made: Any) -> PortInfo:
    return PortInfo(
        id=port_id, name="", description="", network_id=network_id, project_id=project_id,
        mac_address=mac_of(port_id), admin_state_up=True, status=status, fixed_ips=[fixed],
        device_id=router_id, device_owner=owner, security_groups=[],
        port_security_enabled=False, allowed_address_pairs=[], binding_host_id="",
        binding_vif_type=VIF_TYPE, created_at=made, updated_at=made,
        target={"project_id": project_id})


async def list_ports(db_: Database, ctx: RequestContext) -> list[PortInfo]:
    """Every router port the caller sees (a member: its project's routers')."""
    records = await db.list_routers(db_, None if ctx.is_admin else ctx.project_id or "")
    return [p for r in records for p in ports_of(ctx, r)]


async def find(db_: Database, ctx: RequestContext, port_id: str) -> PortInfo | None:
    """The router port with this id if the caller may see it, else None."""
    record = await db.router_of_port(db_, port_id)
    if record is None:
        return None
    return next((p for p in ports_of(ctx, record) if p.id == port_id), None)


def refuse_delete(port: PortInfo) -> exceptions.NovaletError:
    return L3PortInUse(port_id=port.id, device_owner=port.device_owner)


def refuse_update(port: PortInfo) -> exceptions.NovaletError:
    return RouterPortInUse(port_id=port.id, device_owner=port.device_owner,
                           router_id=port.device_id)
