"""Handlers for /v2.0/subnets: Neutron's subnets over network/subnets.py, which
checks bodies (spec_from_body, changes_from_body) and enforces scope and policy."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.api.network import listing
from novalet.api.network import bulk, tags
from novalet.api.network.attributes import BadBody
from novalet.api.network.listing import Field, as_bool, as_int
from novalet.common.timeutils import isotime
from novalet.network.subnets import (SubnetInfo, SubnetNotFound, changes_from_body,
                                     spec_from_body)

FIELDS: dict[str, Field] = {
    "id": Field(), "name": Field(), "description": Field(), "network_id": Field(),
    "tenant_id": Field(), "project_id": Field(), "ip_version": Field(as_int),
    "cidr": Field(), "gateway_ip": Field(), "enable_dhcp": Field(as_bool),
    "allocation_pools": Field(sortable=False), "dns_nameservers": Field(sortable=False),
    "host_routes": Field(sortable=False), "subnetpool_id": Field(),
    "ipv6_ra_mode": Field(), "ipv6_address_mode": Field(),
    "created_at": Field(), "updated_at": Field(), "tags": Field(sortable=False),
    "router:external": Field(as_bool),
}


def view(info: SubnetInfo) -> dict[str, Any]:
    """Neutron's subnet: the core attributes (no subnet pools, IPv4 only, so those
    are null) and the description, timestamps and router:external of the extensions
    listed."""
    project = info.project_id or ""
    return {
        "id": info.id, "name": info.name, "description": info.description,
        "network_id": info.network_id, "tenant_id": project, "project_id": project,
        "ip_version": info.ip_version, "cidr": info.cidr, "gateway_ip": info.gateway_ip,
        "enable_dhcp": info.enable_dhcp, "allocation_pools": list(info.allocation_pools),
        "dns_nameservers": list(info.dns_nameservers), "host_routes": list(info.host_routes),
        "subnetpool_id": None, "ipv6_ra_mode": None, "ipv6_address_mode": None,
        # subnet-external-network: read-only, the network's router:external
        "router:external": info.external, "created_at": isotime(info.created_at),
        "updated_at": isotime(info.updated_at or info.created_at)}


def _fields(req: ApiRequest) -> list[str]:
    return [f for f in req.query.getlist("fields") if f][:listing.MAX_VALUES]


def _inner(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("subnet"), dict):
        raise BadBody(reason="Unable to find 'subnet' in request body; send "
                      '{"subnet": {...}}')
    return dict(body["subnet"])


async def index(req: ApiRequest) -> dict[str, Any]:
    query = listing.parse(req.query, FIELDS)
    infos = await req.app.subnets.list_subnets(req.ctx)
    url = req.app.conf.public_url + req.raw.url.path
    views = await tags.with_tags(req, "subnets", [view(i) for i in infos])
    return listing.apply(views, query, "subnets", url, req.query,
                         lambda marker: SubnetNotFound(subnet_id=marker))


async def show(req: ApiRequest) -> dict[str, Any]:
    info = await req.app.subnets.get_subnet(req.ctx, req.path["subnet_id"])
    shown = await tags.tagged(req, "subnets", view(info))
    return {"subnet": listing.select_fields(shown, _fields(req))}


async def create(req: ApiRequest) -> Reply:
    """One subnet, or Neutron's bulk form {"subnets": [...]}: all or none."""
    body = await req.json()
    if isinstance(body, dict) and "subnets" in body and "subnet" not in body:
        return Reply({"subnets": await _create_bulk(req, body["subnets"])}, 201)
    info = await req.app.subnets.create_subnet(req.ctx, spec_from_body(_inner(body)))
    return Reply({"subnet": await tags.tagged(req, "subnets", view(info))}, 201)


async def _create_bulk(req: ApiRequest, items: Any) -> list[dict[str, Any]]:
    specs = [spec_from_body(_inner({"subnet": item})) for item in bulk.items(items, "subnets")]

    async def undo(info: SubnetInfo) -> None:
        await req.app.subnets.delete_subnet(req.ctx, info.id)

    made = await bulk.all_or_none(specs, lambda s: req.app.subnets.create_subnet(req.ctx, s),
                                  undo)
    return await tags.with_tags(req, "subnets", [view(info) for info in made])


async def update(req: ApiRequest) -> dict[str, Any]:
    changes = changes_from_body(_inner(await req.json()))
    info = await req.app.subnets.update_subnet(req.ctx, req.path["subnet_id"], changes)
    return {"subnet": await tags.tagged(req, "subnets", view(info))}


async def delete(req: ApiRequest) -> Reply:
    await req.app.subnets.delete_subnet(req.ctx, req.path["subnet_id"])
    return Reply(None, 204)
