"""Handlers for /os-fixed-ips/{address} (admin; a proxy API: 404 from 2.36)."""

from __future__ import annotations

from typing import Any

from novalet.api.compute.proxy import require_proxy_version
from novalet.api.compute.schemas import fixed_ips as schemas
from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import ValidationError, accepts, validate
from novalet.policy import enforce


@accepts()
async def show(req: ApiRequest) -> dict[str, Any]:
    """The address's network, and the instance holding it (2.4: whether reserved)."""
    require_proxy_version(req)
    enforce(req.ctx, "os_compute_api:os-fixed-ips")
    row = await req.app.network.get_fixed_ip(req.ctx, req.path["address"])
    body: dict[str, Any] = {"cidr": row.cidr, "address": row.fixed.address,
                            "hostname": row.hostname, "host": row.host}
    if req.at_least("2.4"):
        body["reserved"] = row.fixed.reserved
    return {"fixed_ip": body}


@accepts(actions=schemas.ACTIONS)
async def action(req: ApiRequest) -> Reply:
    """{"reserve": null} keeps the address from being handed out; {"unreserve": null}."""
    require_proxy_version(req)
    body = await req.json_object()
    if "reserve" in body:
        validate(body, schemas.RESERVE)
    elif "unreserve" in body:
        validate(body, schemas.UNRESERVE)
    else:
        raise ValidationError(reason=f"There is no such action: {', '.join(body) or '(none)'}")
    enforce(req.ctx, "os_compute_api:os-fixed-ips")
    await req.app.network.set_fixed_ip_reserved(req.ctx, req.path["address"],
                                            "reserve" in body)
    return Reply(None, 202)
