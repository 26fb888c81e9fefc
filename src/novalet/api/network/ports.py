"""Handlers for /v2.0/ports: Neutron's ports over the network domain (network/ports.py
enforces scope and policy; binding:* attributes are shown as its policy allows)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import QueryParams

from novalet.api.handler import ApiRequest, Reply
from novalet.api.network import listing
from novalet.api.network import bulk, tags
from novalet.api.network.attributes import Attr, boolean, one_of, read_body, string
from novalet.api.network.listing import BadQuery, Field, as_bool
from novalet.common.timeutils import isotime
from novalet.network.port_info import PortInfo
from novalet.network.ports import PortNotFound


def _any(name: str, value: Any) -> Any:
    """Checked by the domain service (lists and objects with Neutron's errors)."""
    return value


_READ_ONLY = Attr(string(255), post=False, put=False)
ATTRIBUTES: dict[str, Attr] = {
    "id": _READ_ONLY, "status": _READ_ONLY, "created_at": _READ_ONLY,
    "updated_at": _READ_ONLY, "binding:vif_type": _READ_ONLY,
    "binding:vif_details": _READ_ONLY,
    "name": Attr(string(255)),
    "description": Attr(string(255)),
    "network_id": Attr(string(36), put=False),
    "admin_state_up": Attr(boolean),
    "mac_address": Attr(string(17)),
    "fixed_ips": Attr(_any),
    "device_id": Attr(string(255)),
    "device_owner": Attr(string(255)),
    "security_groups": Attr(_any),
    "port_security_enabled": Attr(boolean),
    "allowed_address_pairs": Attr(_any),
    "binding:host_id": Attr(string(255)),
    "binding:profile": Attr(_any),
    "binding:vnic_type": Attr(one_of("normal")),
    "tenant_id": Attr(string(255), put=False),
    "project_id": Attr(string(255), put=False),
}

# The port attributes each extension adds (api/network/extensions.py lists them).
EXTENSION_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "binding": ("binding:host_id", "binding:vif_type", "binding:vif_details",
                "binding:vnic_type", "binding:profile"),
    "port-security": ("port_security_enabled",),
    "allowed-address-pairs": ("allowed_address_pairs",),
    "security-group": ("security_groups",),
}

FIELDS: dict[str, Field] = {
    "id": Field(), "name": Field(), "description": Field(), "network_id": Field(),
    "tenant_id": Field(), "project_id": Field(), "mac_address": Field(),
    "admin_state_up": Field(as_bool), "status": Field(), "device_id": Field(),
    "device_owner": Field(), "port_security_enabled": Field(as_bool),
    "security_groups": Field(sortable=False), "fixed_ips": Field(sortable=False),
    "allowed_address_pairs": Field(sortable=False), "binding:host_id": Field(),
    "binding:vif_type": Field(), "binding:vnic_type": Field(),
    "created_at": Field(), "updated_at": Field(), "tags": Field(sortable=False),
}
_ADMIN_BINDING = ("binding:host_id", "binding:vif_type", "binding:vif_details",
                  "binding:profile")


def view(req: ApiRequest, port: PortInfo) -> dict[str, Any]:
    """Neutron's port; binding:* but vnic_type only for who may read them."""
    body: dict[str, Any] = {
        "id": port.id, "name": port.name, "description": port.description,
        "network_id": port.network_id, "tenant_id": port.project_id,
        "project_id": port.project_id, "mac_address": port.mac_address,
        "admin_state_up": port.admin_state_up, "status": port.status,
        "fixed_ips": [dict(f) for f in port.fixed_ips], "device_id": port.device_id,
        "device_owner": port.device_owner, "security_groups": list(port.security_groups),
        "port_security_enabled": port.port_security_enabled,
        "allowed_address_pairs": [dict(p) for p in port.allowed_address_pairs],
        "binding:vnic_type": "normal",
        "created_at": isotime(port.created_at), "updated_at": isotime(port.updated_at)}
    binding = {"binding:host_id": port.binding_host_id,
               "binding:vif_type": port.binding_vif_type,
               "binding:vif_details": {}, "binding:profile": {}}
    for name in _ADMIN_BINDING:
        if req.allowed(f"get_port:{name}"):
            body[name] = binding[name]
    return body


def _fields(req: ApiRequest) -> list[str]:
    return [f for f in req.query.getlist("fields") if f][:listing.MAX_VALUES]


def _fixed_ip_filters(query: QueryParams) -> list[tuple[str, str]]:
    """Neutron's `fixed_ips=ip_address=X` and `fixed_ips=subnet_id=Y` (repeatable:
    a port matches when it has every one)."""
    wanted = []
    for value in query.getlist("fixed_ips")[:listing.MAX_VALUES]:
        key, sep, text = value.partition("=")
        if not sep or key not in ("ip_address", "subnet_id") or not text:
            raise BadQuery(reason=f"Invalid fixed_ips filter {value!r}: use "
                           "fixed_ips=ip_address=<address> or fixed_ips=subnet_id=<id>")
        wanted.append((key, text))
    return wanted


async def index(req: ApiRequest) -> dict[str, Any]:
    by_address = _fixed_ip_filters(req.query)
    rest = QueryParams([(k, v) for k, v in req.query.multi_items() if k != "fixed_ips"])
    query = listing.parse(rest, FIELDS)
    ports = await tags.with_tags(req, "ports", [view(req, p) for p in
                                                await req.app.ports.list_ports(req.ctx)])
    ports = [p for p in ports
             if all(any(f.get(k) == v for f in p["fixed_ips"]) for k, v in by_address)]
    url = req.app.conf.public_url + req.raw.url.path
    return listing.apply(ports, query, "ports", url, req.query,
                         lambda marker: PortNotFound(port_id=marker))


async def show(req: ApiRequest) -> dict[str, Any]:
    port = await req.app.ports.get_port(req.ctx, req.path["port_id"])
    shown = await tags.tagged(req, "ports", view(req, port))
    return {"port": listing.select_fields(shown, _fields(req))}


async def create(req: ApiRequest) -> Reply:
    """One port, or Neutron's bulk form {"ports": [...]}: all or none."""
    body = await req.json()
    if isinstance(body, dict) and "ports" in body and "port" not in body:
        return Reply({"ports": await _create_bulk(req, body["ports"])}, 201)
    attrs = read_body(body, "port", ATTRIBUTES, "POST")
    port = await req.app.ports.create_port(req.ctx, attrs)
    return Reply({"port": await tags.tagged(req, "ports", view(req, port))}, 201)


async def _create_bulk(req: ApiRequest, items: Any) -> list[dict[str, Any]]:
    checked = [read_body({"port": item}, "port", ATTRIBUTES, "POST")
               for item in bulk.items(items, "ports")]

    async def undo(port: PortInfo) -> None:
        await req.app.ports.delete_port(req.ctx, port.id)

    made = await bulk.all_or_none(checked, lambda a: req.app.ports.create_port(req.ctx, a),
                                  undo)
    return await tags.with_tags(req, "ports", [view(req, port) for port in made])


async def update(req: ApiRequest) -> dict[str, Any]:
    attrs = read_body(await req.json(), "port", ATTRIBUTES, "PUT")
    port = await req.app.ports.update_port(req.ctx, req.path["port_id"], attrs)
    return {"port": await tags.tagged(req, "ports", view(req, port))}


async def delete(req: ApiRequest) -> Reply:
    await req.app.ports.delete_port(req.ctx, req.path["port_id"])
    return Reply(None, 204)
