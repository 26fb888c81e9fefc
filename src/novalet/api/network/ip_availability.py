"""Handlers for /v2.0/network-ip-availabilities (admin): total and used addresses per
network and per subnet, over network/ip_availability.py."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest
from novalet.api.network import listing
from novalet.api.network.listing import Field, as_int
from novalet.db.ip_availability import Availability
from novalet.network.ip_availability import NetworkNotFound

FIELDS: dict[str, Field] = {
    "network_id": Field(), "network_name": Field(), "project_id": Field(),
    "tenant_id": Field(), "ip_version": Field(as_int), "total_ips": Field(as_int),
    "used_ips": Field(as_int)}


def view(a: Availability) -> dict[str, Any]:
    subnets = [] if a.subnet_uuid is None else [{
        "subnet_id": a.subnet_uuid, "subnet_name": a.subnet_name or "", "cidr": a.cidr,
        "ip_version": 4, "total_ips": a.total, "used_ips": a.used}]
    return {"network_id": a.network_uuid, "network_name": a.network_name,
            "project_id": a.project_id, "tenant_id": a.project_id,
            "total_ips": a.total, "used_ips": a.used, "subnet_ip_availability": subnets}


def _filterable(a: Availability) -> dict[str, Any]:
    """The view plus ip_version (the versions of its subnets), to filter on."""
    return {**view(a), "ip_version": [4] if a.subnet_uuid else [], "id": a.network_uuid}


async def index(req: ApiRequest) -> dict[str, Any]:
    query = listing.parse(req.query, FIELDS)
    items = [_filterable(a) for a in await req.app.ip_availability.list_availability(req.ctx)]
    url = req.app.conf.public_url + req.raw.url.path
    body = listing.apply(items, query, "network_ip_availabilities", url, req.query,
                         lambda marker: NetworkNotFound(net_id=marker))
    shown = [{k: v for k, v in item.items() if k not in ("id", "ip_version")
              or k in query.fields} for item in body["network_ip_availabilities"]]
    return {**body, "network_ip_availabilities": shown}


async def show(req: ApiRequest) -> dict[str, Any]:
    found = await req.app.ip_availability.get_availability(req.ctx, req.path["network_id"])
    fields = [f for f in req.query.getlist("fields") if f][:listing.MAX_VALUES]
    return {"network_ip_availability": listing.select_fields(view(found), fields)}
