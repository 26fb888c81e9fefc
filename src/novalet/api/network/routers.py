"""Handlers for /v2.0/routers: Neutron's routers (`router`, `ext-gw-mode`) and their
interfaces over the network domain (network/routers.py enforces scope and policy)."""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.api.network import listing, tags
from novalet.api.network.attributes import Attr, BadBody, boolean, read_body, string
from novalet.api.network.listing import Field, as_bool
from novalet.common.timeutils import isotime
from novalet.network.routers import InterfaceInfo, RouterNotFound, RouterView


def _gateway_info(name: str, value: Any) -> dict[str, Any] | None:
    """{network_id, enable_snat, external_fixed_ips} or null/{} (no gateway)."""
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise BadBody(reason=f"Invalid input for {name}. Reason: '{value}' is not a "
                      "dictionary.")
    unknown = sorted(set(value) - {"network_id", "enable_snat", "external_fixed_ips"})
    if unknown:
        raise BadBody(reason=f"Invalid input for {name}. Reason: Unexpected keys supplied: "
                      f"{', '.join(unknown)}.")
    checked: dict[str, Any] = {}
    if "network_id" not in value:
        raise BadBody(reason=f"Invalid input for {name}. Reason: Validation of dictionary's "
                      "keys failed. Expected keys: {'network_id'}")
    checked["network_id"] = _uuid(f"{name}:network_id", value["network_id"])
    if "enable_snat" in value:
        checked["enable_snat"] = boolean(f"{name}:enable_snat", value["enable_snat"])
    fixed = value.get("external_fixed_ips")
    if fixed is not None:
        if not isinstance(fixed, list) or not all(isinstance(f, dict) for f in fixed):
            raise BadBody(reason=f"Invalid input for {name}. Reason: external_fixed_ips "
                          "must be a list of {'subnet_id', 'ip_address'}.")
        checked["external_fixed_ips"] = [
            {k: (_uuid(k, v) if k == "subnet_id" else string(64)(k, v))
             for k, v in f.items() if k in ("subnet_id", "ip_address")} for f in fixed]
    return checked


def _uuid(name: str, value: Any) -> str:
    try:
        return str(uuidlib.UUID(str(value)))
    except ValueError:
        raise BadBody(reason=f"Invalid input for {name}. Reason: '{value}' is not a valid "
                      "UUID.") from None


_READ_ONLY = Attr(string(255), post=False, put=False)
ATTRIBUTES: dict[str, Attr] = {
    "id": _READ_ONLY, "status": _READ_ONLY, "created_at": _READ_ONLY,
    "updated_at": _READ_ONLY,
    "name": Attr(string(255)),
    "description": Attr(string(255)),
    "admin_state_up": Attr(boolean),
    "external_gateway_info": Attr(_gateway_info),
    "tenant_id": Attr(string(255), put=False),
    "project_id": Attr(string(255), put=False),
}

FIELDS: dict[str, Field] = {
    "id": Field(), "name": Field(), "description": Field(), "status": Field(),
    "admin_state_up": Field(as_bool), "external_gateway_info": Field(sortable=False),
    "tenant_id": Field(), "project_id": Field(), "created_at": Field(),
    "updated_at": Field(),
} | {"tags": Field(sortable=False)}


def view(router: RouterView) -> dict[str, Any]:
    return {"id": router.id, "name": router.name, "description": router.description,
            "admin_state_up": router.admin_state_up, "status": router.status,
            "external_gateway_info": router.external_gateway_info,
            "tenant_id": router.project_id, "project_id": router.project_id,
            "created_at": isotime(router.created_at),
            "updated_at": isotime(router.updated_at or router.created_at)}


def interface_view(info: InterfaceInfo) -> dict[str, Any]:
    return {"id": info.router_id, "tenant_id": info.project_id,
            "project_id": info.project_id, "port_id": info.port_id,
            "subnet_id": info.subnet_id, "subnet_ids": [info.subnet_id],
            "network_id": info.network_id}


async def index(req: ApiRequest) -> dict[str, Any]:
    query = listing.parse(req.query, FIELDS)
    found = await req.app.routers.list_routers(req.ctx)
    url = req.app.conf.public_url + req.raw.url.path
    views = await tags.with_tags(req, "routers", [view(r) for r in found])
    return listing.apply(views, query, "routers", url, req.query,
                         lambda marker: RouterNotFound(router_id=marker))


async def show(req: ApiRequest) -> dict[str, Any]:
    found = await req.app.routers.get_router(req.ctx, req.path["router_id"])
    fields = [f for f in req.query.getlist("fields") if f][:listing.MAX_VALUES]
    shown = await tags.tagged(req, "routers", view(found))
    return {"router": listing.select_fields(shown, fields)}


async def create(req: ApiRequest) -> Reply:
    attrs = read_body(await req.json(), "router", ATTRIBUTES, "POST")
    made = await req.app.routers.create_router(req.ctx, attrs)
    return Reply({"router": await tags.tagged(req, "routers", view(made))}, 201)


async def update(req: ApiRequest) -> dict[str, Any]:
    attrs = read_body(await req.json(), "router", ATTRIBUTES, "PUT")
    changed = await req.app.routers.update_router(req.ctx, req.path["router_id"], attrs)
    return {"router": await tags.tagged(req, "routers", view(changed))}


async def delete(req: ApiRequest) -> Reply:
    await req.app.routers.delete_router(req.ctx, req.path["router_id"])
    return Reply(None, 204)


def _interface_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadBody(reason="the body must be a JSON object")
    unknown = sorted(set(body) - {"subnet_id", "port_id"})
    if unknown:
        raise BadBody(reason=f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    return {k: _uuid(k, v) for k, v in body.items() if v is not None}


async def add_interface(req: ApiRequest) -> dict[str, Any]:
    body = _interface_body(await req.json())
    info = await req.app.routers.add_interface(req.ctx, req.path["router_id"], body)
    return interface_view(info)


async def remove_interface(req: ApiRequest) -> dict[str, Any]:
    body = _interface_body(await req.json())
    info = await req.app.routers.remove_interface(req.ctx, req.path["router_id"], body)
    return interface_view(info)
