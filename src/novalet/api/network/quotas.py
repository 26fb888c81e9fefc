"""Handlers for /v2.0/quotas: Neutron's `quotas` and `quota_details` over
network/quotas.py (the one quota store the compute API's os-quota-sets shares)."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.api.network.attributes import Attr, boolean, integer, read_body
from novalet.compute.quotas import MAX_LIMIT
from novalet.network.quotas import NAMES

ATTRIBUTES: dict[str, Attr] = {name: Attr(integer(-1, MAX_LIMIT)) for name in NAMES}
ATTRIBUTES["check_limit"] = Attr(boolean)  # the quota-check-limit extension


async def index(req: ApiRequest) -> dict[str, Any]:
    """Every project with limits of its own (admin only)."""
    found = await req.app.network_quotas.list_quotas(req.ctx)
    return {"quotas": [{**limits, "project_id": project, "tenant_id": project}
                       for project, limits in found.items()]}


async def show(req: ApiRequest) -> dict[str, Any]:
    return {"quota": await req.app.network_quotas.get_quota(req.ctx, req.path["project_id"])}


async def defaults(req: ApiRequest) -> dict[str, Any]:
    quota = await req.app.network_quotas.default_quota(req.ctx, req.path["project_id"])
    return {"quota": quota}


async def details(req: ApiRequest) -> dict[str, Any]:
    quota = await req.app.network_quotas.quota_details(req.ctx, req.path["project_id"])
    return {"quota": quota}


async def update(req: ApiRequest) -> dict[str, Any]:
    values = read_body(await req.json(), "quota", ATTRIBUTES, "PUT")
    check_limit = bool(values.pop("check_limit", True))
    quota = await req.app.network_quotas.update_quota(req.ctx, req.path["project_id"],
                                                      values, check_limit)
    return {"quota": quota}


async def delete(req: ApiRequest) -> Reply:
    await req.app.network_quotas.delete_quota(req.ctx, req.path["project_id"])
    return Reply(None, 204)
