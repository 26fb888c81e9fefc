"""Handlers for /os-networks: nova-network's networks (a proxy API: 404 from 2.36)."""

from __future__ import annotations

from typing import Any

from novalet.api.compute.proxy import require_proxy_version
from novalet.api.compute.schemas import networks as schemas
from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import ValidationError, accepts, to_bool, validate
from novalet.common.timeutils import isotime_micro
from novalet.db.models import Network
from novalet.policy import enforce

def view(req: ApiRequest, network: Network) -> dict[str, Any]:
    """Nova's network_dict: a few fields for everyone, the rest for admins."""
    body: dict[str, Any] = {
        "id": network.uuid, "cidr": network.cidr, "netmask": network.netmask,
        "gateway": network.gateway, "broadcast": network.broadcast, "dns1": network.dns1,
        "dns2": network.dns2, "cidr_v6": None, "gateway_v6": None, "label": network.label,
        "netmask_v6": None}
    if req.ctx.is_admin:
        body.update({
            "created_at": isotime_micro(network.created_at),
            "updated_at": isotime_micro(network.updated_at), "deleted_at": None,
            "deleted": False, "injected": False, "bridge": network.bridge,
            "vlan": network.vlan, "vpn_public_address": None, "vpn_public_port": None,
            "vpn_private_address": None, "dhcp_start": network.dhcp_start,
            "project_id": network.project_id, "host": network.host,
            "bridge_interface": network.bridge_interface, "multi_host": network.multi_host,
            "priority": None, "rxtx_base": None, "mtu": network.mtu,
            "dhcp_server": network.gateway, "enable_dhcp": req.app.network.mode != "flat",
            "share_address": False})
    return body


@accepts()
async def index(req: ApiRequest) -> dict[str, Any]:
    require_proxy_version(req)
    enforce(req.ctx, "os_compute_api:os-networks:list")
    networks = await req.app.network.list_networks(req.ctx)
    return {"networks": [view(req, n) for n in networks]}


@accepts()
async def show(req: ApiRequest) -> dict[str, Any]:
    require_proxy_version(req)
    enforce(req.ctx, "os_compute_api:os-networks:show")
    network = await req.app.network.get_network(req.ctx, req.path["network_id"])
    return {"network": view(req, network)}


_CREATE_OPTIONS = ("gateway", "dns1", "dns2", "bridge", "bridge_interface", "project_id",
                   "allowed_start", "allowed_end", "mtu", "vlan", "vlan_start")


@accepts(body=schemas.CREATE_NETWORK)
async def create(req: ApiRequest) -> dict[str, Any]:
    require_proxy_version(req)
    enforce(req.ctx, "os_compute_api:os-networks")
    body = await req.json_object()
    validate(body, schemas.CREATE_NETWORK)
    params = body["network"]
    options: dict[str, Any] = {k: params[k] for k in _CREATE_OPTIONS if params.get(k)}
    for key in ("mtu", "vlan", "vlan_start"):
        if key in options:
            options[key] = int(options[key])
    if "multi_host" in params:
        options["multi_host"] = to_bool(params["multi_host"])
    cidr = params.get("cidr") or params["cidr_v6"]
    network = await req.app.network.create_network(req.ctx, params["label"], cidr, **options)
    return {"network": view(req, network)}


@accepts()
async def delete(req: ApiRequest) -> Reply:
    require_proxy_version(req)
    enforce(req.ctx, "os_compute_api:os-networks")
    await req.app.network.delete_network(req.ctx, req.path["network_id"])
    return Reply(None, 202)


@accepts(body=schemas.ADD_NETWORK_TO_PROJECT)
async def add(req: ApiRequest) -> Reply:
    """POST /os-networks/add {"id": uuid or null}: give the caller's project a network."""
    require_proxy_version(req)
    enforce(req.ctx, "os_compute_api:os-networks")
    body = await req.json_object()
    validate(body, schemas.ADD_NETWORK_TO_PROJECT)
    await req.app.network.add_network_to_project(req.ctx, req.ctx.project_id or "",
                                                 body["id"])
    return Reply(None, 202)


# action key -> (policy, what to set: project and/or host)
_ACTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "disassociate": ("os_compute_api:os-networks", {"project": None, "host": None}),
    "disassociate_project": ("os_compute_api:os-networks-associate", {"project": None}),
    "disassociate_host": ("os_compute_api:os-networks-associate", {"host": None}),
    "associate_host": ("os_compute_api:os-networks-associate", {}),
}


@accepts(actions=schemas.ACTIONS)
async def action(req: ApiRequest) -> Reply:
    """POST /os-networks/{id}/action: disassociate (project and host),
    disassociate_project, disassociate_host, associate_host."""
    require_proxy_version(req)
    body = await req.json_object()
    name = next((key for key in body if key in _ACTIONS), None)
    if name is None:
        raise ValidationError(reason=f"There is no such action: {', '.join(body) or '(none)'}")
    policy, changes = _ACTIONS[name]
    enforce(req.ctx, policy)
    if name == "associate_host":
        validate(body, schemas.ASSOCIATE_HOST)
        changes = {"host": body["associate_host"]}
    await req.app.network.associate_network(req.ctx, req.path["network_id"], **changes)
    return Reply(None, 202)
