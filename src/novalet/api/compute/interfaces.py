"""Handlers for /servers/{id}/os-interface: a server's NICs, attached and detached
while it runs. A NIC's port_id is its port's (virtual interface's) id; attaching
takes a net_id, or the port_id of a port made through the network API."""

from __future__ import annotations

from typing import Any

from novalet.api.compute.schemas import interfaces as schemas
from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import ValidationError, accepts, validate
from novalet.network.api import InterfaceNotFound
from novalet.network.model import Vif
from novalet.policy import enforce


def view(vif: Vif, subnets: dict[str, str]) -> dict[str, Any]:
    """The NIC as Nova shows a port; subnet_id is its network's subnet (the network
    API's id), the network's id for a network from before subnets had ids."""
    subnet = subnets.get(vif.network_id, vif.network_id)
    return {"port_id": vif.id, "net_id": vif.network_id, "mac_addr": vif.address,
            "port_state": "ACTIVE",
            "fixed_ips": [{"subnet_id": subnet, "ip_address": vif.fixed_ip}]}


async def _views(req: ApiRequest, vifs: list[Vif]) -> list[dict[str, Any]]:
    subnets = await req.app.network.subnet_ids(sorted({v.network_id for v in vifs}))
    return [view(v, subnets) for v in vifs]


async def _server_vifs(req: ApiRequest, rule: str) -> list[Vif]:
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, f"os_compute_api:os-attach-interfaces:{rule}", instance.project_id)
    vifs: list[Vif] = await req.app.network.vifs_for_instance(instance.uuid)
    return vifs


@accepts()
async def index(req: ApiRequest) -> dict[str, Any]:
    return {"interfaceAttachments": await _views(req, await _server_vifs(req, "list"))}


@accepts()
async def show(req: ApiRequest) -> dict[str, Any]:
    port_id = req.path["port_id"]
    for vif in await _server_vifs(req, "show"):
        if vif.id == port_id:
            return {"interfaceAttachment": (await _views(req, [vif]))[0]}
    raise InterfaceNotFound(port_id=port_id, uuid=req.path["server_id"])


@accepts(body=schemas.ATTACH)
async def create(req: ApiRequest) -> dict[str, Any]:
    body = await req.json_object()
    validate(body, schemas.ATTACH)
    attachment = body.get("interfaceAttachment") or {}
    if attachment.get("port_id") and (attachment.get("net_id") or attachment.get("fixed_ips")):
        raise ValidationError(reason="Must not input both network_id and port_id: a port "
                              "brings its network and address")
    if "tag" in attachment:
        raise ValidationError(reason="Device tags are not supported on interfaces.")
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:os-attach-interfaces:create", instance.project_id)
    fixed = attachment.get("fixed_ips") or [{}]
    vif = await req.app.compute.attach_interface(
        req.ctx, instance.uuid, attachment.get("net_id"), fixed[0].get("ip_address"),
        port_id=attachment.get("port_id") or None)
    return {"interfaceAttachment": (await _views(req, [vif]))[0]}


@accepts()
async def delete(req: ApiRequest) -> Reply:
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:os-attach-interfaces:delete", instance.project_id)
    await req.app.compute.detach_interface(req.ctx, instance.uuid, req.path["port_id"])
    return Reply(None, 202)
