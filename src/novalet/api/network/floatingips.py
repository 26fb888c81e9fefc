"""Handlers for /v2.0/floatingips: Neutron's floating IPs over the floating_ips rows
the compute API's os-floating-ips also shows (network/floating_ips.py enforces
scope and policy)."""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.api.network import listing, tags
from novalet.api.network.attributes import Attr, BadBody, Check, read_body, string
from novalet.api.network.listing import Field
from novalet.common.timeutils import isotime
from novalet.network.floating_ips import FloatingIPNotFound, FloatingIPView


def _uuid(nullable: bool) -> Check:
    def check(name: str, value: Any) -> str | None:
        if value is None and nullable:
            return None
        try:
            return str(uuidlib.UUID(str(value)))
        except ValueError:
            raise BadBody(reason=f"Invalid input for {name}. Reason: '{value}' is not a "
                          "valid UUID.") from None
    return check


def _ip(name: str, value: Any) -> str | None:
    if value is None:
        return None
    return str(string(64)(name, value))


_READ_ONLY = Attr(string(255), post=False, put=False)
ATTRIBUTES: dict[str, Attr] = {
    "id": _READ_ONLY, "status": _READ_ONLY, "router_id": _READ_ONLY,
    "created_at": _READ_ONLY, "updated_at": _READ_ONLY,
    "floating_network_id": Attr(_uuid(False), put=False),
    "floating_ip_address": Attr(_ip, put=False),
    "port_id": Attr(_uuid(True)),
    "fixed_ip_address": Attr(_ip),
    "description": Attr(string(255)),
    "tenant_id": Attr(string(255), put=False),
    "project_id": Attr(string(255), put=False),
}

FIELDS: dict[str, Field] = {
    name: Field() for name in (
        "id", "floating_ip_address", "floating_network_id", "router_id", "port_id",
        "fixed_ip_address", "status", "tenant_id", "project_id", "description",
        "created_at", "updated_at")} | {"tags": Field(sortable=False)}


def view(fip: FloatingIPView) -> dict[str, Any]:
    return {"id": fip.id, "floating_ip_address": fip.floating_ip_address,
            "floating_network_id": fip.floating_network_id, "router_id": fip.router_id,
            "port_id": fip.port_id, "fixed_ip_address": fip.fixed_ip_address,
            "status": fip.status, "tenant_id": fip.project_id, "project_id": fip.project_id,
            "description": fip.description, "created_at": isotime(fip.created_at),
            "updated_at": isotime(fip.updated_at or fip.created_at)}


async def index(req: ApiRequest) -> dict[str, Any]:
    query = listing.parse(req.query, FIELDS)
    found = await req.app.floatingips.list_floatingips(req.ctx)
    url = req.app.conf.public_url + req.raw.url.path
    views = await tags.with_tags(req, "floatingips", [view(f) for f in found])
    return listing.apply(views, query, "floatingips", url, req.query,
                         lambda marker: FloatingIPNotFound(floatingip_id=marker))


async def show(req: ApiRequest) -> dict[str, Any]:
    found = await req.app.floatingips.get_floatingip(req.ctx, req.path["floatingip_id"])
    fields = [f for f in req.query.getlist("fields") if f][:listing.MAX_VALUES]
    shown = await tags.tagged(req, "floatingips", view(found))
    return {"floatingip": listing.select_fields(shown, fields)}


async def create(req: ApiRequest) -> Reply:
    attrs = read_body(await req.json(), "floatingip", ATTRIBUTES, "POST")
    if "floating_network_id" not in attrs:
        raise BadBody(reason="Failed to parse request. Required attribute "
                      "'floating_network_id' not specified")
    made = await req.app.floatingips.create_floatingip(req.ctx, attrs)
    return Reply({"floatingip": await tags.tagged(req, "floatingips", view(made))}, 201)


async def update(req: ApiRequest) -> dict[str, Any]:
    attrs = read_body(await req.json(), "floatingip", ATTRIBUTES, "PUT")
    changed = await req.app.floatingips.update_floatingip(req.ctx, req.path["floatingip_id"],
                                                          attrs)
    return {"floatingip": await tags.tagged(req, "floatingips", view(changed))}


async def delete(req: ApiRequest) -> Reply:
    await req.app.floatingips.delete_floatingip(req.ctx, req.path["floatingip_id"])
    return Reply(None, 204)
