"""Handlers for /v2.0/networks: Neutron's networks over the network domain
(network/networks.py enforces scope and policy)."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.api.network import bulk, listing, tags
from novalet.api.network.attributes import (Attr, boolean, integer, one_of, read_body,
                                           string)
from novalet.api.network.listing import Field, as_bool, as_int
from novalet.common.timeutils import isotime
from novalet.network.api import MAX_VLAN
from novalet.network.networks import (DEFAULT_MTU, PHYSICAL_NETWORK, PROVIDER, NetworkNotFound,
                                      NetworkRecord)

_READ_ONLY = Attr(string(255), post=False, put=False)
ATTRIBUTES: dict[str, Attr] = {
    "id": _READ_ONLY, "status": _READ_ONLY, "subnets": _READ_ONLY,
    "created_at": _READ_ONLY, "updated_at": _READ_ONLY,
    "name": Attr(string(255)),
    "description": Attr(string(255)),
    "admin_state_up": Attr(boolean),
    "shared": Attr(boolean),
    "router:external": Attr(boolean),
    "is_default": Attr(boolean),
    "port_security_enabled": Attr(boolean),
    "mtu": Attr(integer(0, 65535)),
    "tenant_id": Attr(string(255), put=False),
    "project_id": Attr(string(255), put=False),
    "provider:network_type": Attr(one_of("flat", "vlan", "vxlan", "gre", "geneve", "local")),
    "provider:physical_network": Attr(string(64)),
    "provider:segmentation_id": Attr(integer(1, MAX_VLAN, nullable=True)),
}

FIELDS: dict[str, Field] = {
    "id": Field(), "name": Field(), "description": Field(), "tenant_id": Field(),
    "project_id": Field(), "status": Field(), "admin_state_up": Field(as_bool),
    "shared": Field(as_bool), "router:external": Field(as_bool), "is_default": Field(as_bool),
    "port_security_enabled": Field(as_bool), "mtu": Field(as_int),
    "subnets": Field(sortable=False), "created_at": Field(), "updated_at": Field(),
    "provider:network_type": Field(), "provider:physical_network": Field(),
    "provider:segmentation_id": Field(as_int), "tags": Field(sortable=False),
}


def view(req: ApiRequest, record: NetworkRecord) -> dict[str, Any]:
    """Neutron's network; the provider attributes only for who may read them."""
    row = record.row
    body: dict[str, Any] = {
        "id": row.uuid, "name": row.label, "description": row.description or "",
        "tenant_id": row.project_id, "project_id": row.project_id,
        "admin_state_up": bool(row.admin_state_up), "shared": record.shared,
        "router:external": bool(row.external), "is_default": bool(row.is_default),
        "status": "ACTIVE",
        "subnets": list(record.subnets), "mtu": row.mtu or _default_mtu(req),
        "port_security_enabled": bool(row.port_security_enabled),
        "created_at": isotime(row.created_at), "updated_at": isotime(row.updated_at or
                                                                    row.created_at)}
    provider = {"provider:network_type": "vlan" if row.vlan is not None else "flat",
                "provider:physical_network": PHYSICAL_NETWORK,
                "provider:segmentation_id": row.vlan}
    for name in PROVIDER:
        if req.allowed(f"get_network:{name}"):
            body[name] = provider[name]
    return body


def _default_mtu(req: ApiRequest) -> int:
    return int(req.app.conf.get("network", "network_device_mtu") or DEFAULT_MTU)


def _fields(req: ApiRequest) -> list[str]:
    return [f for f in req.query.getlist("fields") if f][:listing.MAX_VALUES]


async def index(req: ApiRequest) -> dict[str, Any]:
    query = listing.parse(req.query, FIELDS)
    records = await req.app.networks.list_network(req.ctx)
    url = req.app.conf.public_url + req.raw.url.path
    views = await tags.with_tags(req, "networks", [view(req, r) for r in records])
    return listing.apply(views, query, "networks", url, req.query,
                         lambda marker: NetworkNotFound(network_id=marker))


async def show(req: ApiRequest) -> dict[str, Any]:
    record = await req.app.networks.get_network(req.ctx, req.path["network_id"])
    shown = await tags.tagged(req, "networks", view(req, record))
    return {"network": listing.select_fields(shown, _fields(req))}


async def create(req: ApiRequest) -> Reply:
    """One network, or Neutron's bulk form {"networks": [...]}: all or none."""
    body = await req.json()
    if isinstance(body, dict) and "networks" in body and "network" not in body:
        return Reply({"networks": await _create_bulk(req, body["networks"])}, 201)
    attrs = read_body(body, "network", ATTRIBUTES, "POST")
    record = await req.app.networks.create_network(req.ctx, attrs)
    return Reply({"network": await tags.tagged(req, "networks", view(req, record))}, 201)


async def _create_bulk(req: ApiRequest, items: Any) -> list[dict[str, Any]]:
    """All or none: the domain service makes them in one transaction."""
    checked = [read_body({"network": item}, "network", ATTRIBUTES, "POST")
               for item in bulk.items(items, "networks")]
    made = await req.app.networks.create_networks(req.ctx, checked)
    return await tags.with_tags(req, "networks", [view(req, record) for record in made])


async def update(req: ApiRequest) -> dict[str, Any]:
    attrs = read_body(await req.json(), "network", ATTRIBUTES, "PUT")
    record = await req.app.networks.update_network(req.ctx, req.path["network_id"], attrs)
    return {"network": await tags.tagged(req, "networks", view(req, record))}


async def delete(req: ApiRequest) -> Reply:
    await req.app.networks.delete_network(req.ctx, req.path["network_id"])
    return Reply(None, 204)
