"""Handlers for /os-floating-ips (a proxy API: 404 from 2.36) and the addFloatingIp
and removeFloatingIp server actions (404 from 2.44)."""

from __future__ import annotations

from typing import Any

from novalet.api.compute.proxy import optional_json, require_proxy_version
from novalet.api.compute.schemas import floating_ips as schemas
from novalet.api.handler import ApiRequest, MalformedBody, Reply, VersionNotFound
from novalet.api.validation import ValidationError, accepts, validate
from novalet.db.network import FloatingRow
from novalet.policy import enforce

ACTIONS_REMOVED = "2.44"


def view(row: FloatingRow) -> dict[str, Any]:
    return {"id": row.floating.id, "ip": row.floating.address, "pool": row.floating.pool,
            "fixed_ip": row.fixed_address, "instance_id": row.instance_uuid}


@accepts()
async def index(req: ApiRequest) -> dict[str, Any]:
    """The floating IPs the caller's project holds."""
    require_proxy_version(req)
    enforce(req.ctx, "os_compute_api:os-floating-ips:list")
    rows = await req.app.network.list_floating_ips(req.ctx)
    return {"floating_ips": [view(r) for r in rows]}


@accepts()
async def show(req: ApiRequest) -> dict[str, Any]:
    require_proxy_version(req)
    enforce(req.ctx, "os_compute_api:os-floating-ips:show")
    row = await req.app.network.get_floating_ip(req.ctx, req.path["floating_ip_id"])
    return {"floating_ip": view(row)}


@accepts(body=schemas.CREATE, body_optional=True)
async def create(req: ApiRequest) -> dict[str, Any]:
    """Allocate a floating IP from {"pool": name} (optional: the default pool)."""
    require_proxy_version(req)
    enforce(req.ctx, "os_compute_api:os-floating-ips:create")
    body = await optional_json(req)
    if body is not None and not isinstance(body, dict):
        raise MalformedBody(reason="the body must be a JSON object")
    pool = (body or {}).get("pool")
    if pool is not None and not isinstance(pool, str):
        raise ValidationError(reason=f"Invalid input for field/attribute pool. Value: {pool}. "
                              f"{pool!r} is not of type 'string'")
    row = await req.app.network.allocate_floating_ip(req.ctx, pool)
    return {"floating_ip": view(row)}


@accepts()
async def delete(req: ApiRequest) -> Reply:
    """Release a floating IP (disassociating it first)."""
    require_proxy_version(req)
    enforce(req.ctx, "os_compute_api:os-floating-ips:delete")
    await req.app.network.release_floating_ip(req.ctx, req.path["floating_ip_id"])
    return Reply(None, 202)


async def add_floating_ip(req: ApiRequest, value: Any) -> Reply:
    """Server action addFloatingIp {"address", "fixed_address"?}."""
    if req.at_least(ACTIONS_REMOVED):
        raise VersionNotFound()
    validate({"addFloatingIp": value}, schemas.ADD_FLOATING_IP)
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:os-floating-ips:add", instance.project_id)
    await req.app.network.associate_floating_ip(req.ctx, instance, value["address"],
                                                value.get("fixed_address"))
    return Reply(None, 202)


async def remove_floating_ip(req: ApiRequest, value: Any) -> Reply:
    """Server action removeFloatingIp {"address"}."""
    if req.at_least(ACTIONS_REMOVED):
        raise VersionNotFound()
    validate({"removeFloatingIp": value}, schemas.REMOVE_FLOATING_IP)
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:os-floating-ips:remove", instance.project_id)
    await req.app.network.disassociate_floating_ip(req.ctx, instance, value["address"])
    return Reply(None, 202)
