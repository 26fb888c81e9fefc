"""Handlers for /servers: list, detail, show, create, update, delete."""

from __future__ import annotations

import secrets
import string
from typing import Any
from urllib.parse import urlencode

from novalet.api.compute import server_filters, server_view
from novalet.common.addresses import canonical_ip
from novalet.api.compute.schemas import servers as schemas
from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import ValidationError, accepts, to_bool, validate
from novalet.compute import az_pinning
from novalet.compute.api import CreateRequest
from novalet.policy import enforce


@accepts(query=schemas.LIST_QUERY)
async def index(req: ApiRequest) -> dict[str, Any]:
    enforce(req.ctx, "os_compute_api:servers:index")
    search = server_filters.parse(req)
    rows = await req.app.compute.list_servers(req.ctx, search.query,
                                              all_tenants=search.all_tenants)
    return _page(req, "servers", [server_view.brief(req, r) for r in rows], rows)


@accepts(query=schemas.LIST_QUERY)
async def detail(req: ApiRequest) -> dict[str, Any]:
    enforce(req.ctx, "os_compute_api:servers:index")
    search = server_filters.parse(req)
    rows = await req.app.compute.list_servers(req.ctx, search.query,
                                              all_tenants=search.all_tenants, detail=True)
    faults = await req.app.compute.faults(rows)
    nets = await server_view.networking(req, rows)
    return _page(req, "servers/detail",
                 [server_view.detail(req, r, faults.get(r.uuid), nets.get(r.uuid))
                  for r in rows], rows)


def _page(req: ApiRequest, path: str, items: list[dict[str, Any]], rows: list[Any]
          ) -> dict[str, Any]:
    body: dict[str, Any] = {"servers": items}
    limit = req.query.get("limit")
    max_limit = req.app.conf.get("api", "max_limit")
    page_size = min(int(limit), max_limit) if limit is not None else max_limit
    if rows and len(rows) >= page_size:
        params = [(k, v) for k, v in req.query.multi_items() if k != "marker"]
        params.append(("marker", rows[-1].uuid))
        query = urlencode(params)
        href = f"{req.app.conf.public_url}/compute/v2.1/{path}?{query}"
        body["servers_links"] = [{"rel": "next", "href": href}]
    return body


@accepts()
async def show(req: ApiRequest) -> dict[str, Any]:
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:servers:show", instance.project_id)
    faults = await req.app.compute.faults([instance])
    nets = await server_view.networking(req, [instance])
    return {"server": server_view.detail(req, instance, faults.get(instance.uuid),
                                         nets.get(instance.uuid),
                                         await server_view.groups_of(req, instance))}


@accepts(body=schemas.CREATE)
async def create(req: ApiRequest) -> Reply:
    enforce(req.ctx, "os_compute_api:servers:create", req.ctx.project_id)
    body = await req.json_object()
    validate(body, schemas.for_version(schemas.CREATE, req))
    request = _create_request(req, body)
    records, reservation_id = await req.app.compute.create(req.ctx, request)
    if request.return_reservation_id:
        return Reply({"reservation_id": reservation_id}, 202)
    first = records[0]
    password = body["server"].get("adminPass") or generate_password()
    server = {**server_view.brief(req, first), "OS-DCF:diskConfig": "MANUAL",
              "security_groups": [{"name": name} for name in
                                  (request.security_groups or ["default"])],
              "adminPass": password}
    del server["name"]
    location = server_view.links(req, "servers", first.uuid)[0]["href"]
    return Reply({"server": server}, 202, {"Location": location})


def _create_request(req: ApiRequest, body: dict[str, Any]) -> CreateRequest:
    server = body["server"]
    image_ref = server.get("imageRef") or _image_from_bdms(server)
    if not image_ref:
        raise ValidationError(reason="Invalid input: 'imageRef' is a required property")
    min_count = int(server.get("min_count", 1))
    max_count = int(server.get("max_count", min_count))
    if min_count > max_count:
        raise ValidationError(reason="min_count must be <= max_count")
    hints = body.get("os:scheduler_hints") or body.get("OS-SCH-HNT:scheduler_hints") or {}
    networks = server.get("networks", "auto")
    if isinstance(networks, list):
        # a port made through the network API, or a network (with an address)
        networks = [{"port": n["port"]} if n.get("port") else
                    {"uuid": n["uuid"], **({"fixed_ip": n["fixed_ip"]} if n.get("fixed_ip")
                                           else {})} for n in networks
                    if n.get("port") or n.get("uuid")]
    groups = [g.get("name") for g in server.get("security_groups", []) if isinstance(g, dict)]
    if server.get("hostname") and max_count > 1:
        raise ValidationError(reason="Unable to specify a hostname when creating more "
                              "than one server")
    return CreateRequest(
        name=server["name"], flavor_ref=last_segment(str(server["flavorRef"])),
        image_ref=last_segment(image_ref), min_count=min_count,
        max_count=max_count, key_name=server.get("key_name"),
        metadata=server.get("metadata", {}), user_data=server.get("user_data"),
        availability_zone=server.get("availability_zone"),
        description=server.get("description"), hostname=server.get("hostname"),
        tags=server.get("tags", []), networks=networks or "auto",
        get_me_a_network=server.get("networks") == "auto",  # a string only from 2.37
        security_groups=[g for g in groups if g],
        config_drive=to_bool(server.get("config_drive") or False),
        access_ip_v4=canonical_ip(server.get("accessIPv4")),
        access_ip_v6=canonical_ip(server.get("accessIPv6")),
        scheduler_hints=hints, host=server.get("host"),
        hypervisor_hostname=server.get("hypervisor_hostname"),
        personality=server.get("personality") or [],
        return_reservation_id=to_bool(server.get("return_reservation_id", False)))


def _image_from_bdms(server: dict[str, Any]) -> str | None:
    """The image of a local boot disk given as a block device mapping (clients send
    one for plain image boots); volumes are refused, as no volume service runs here."""
    if server.get("block_device_mapping"):
        raise _NO_VOLUMES
    image = None
    for bdm in server.get("block_device_mapping_v2") or []:
        if not isinstance(bdm, dict) or bdm.get("destination_type", "local") != "local" \
                or bdm.get("source_type") not in ("image", "blank"):
            raise _NO_VOLUMES
        if bdm.get("source_type") == "image" and str(bdm.get("boot_index")) == "0":
            image = bdm.get("uuid")
    return image


_NO_VOLUMES = ValidationError(reason="Block device mappings to volumes need the volume "
                              "service, which this cloud does not run; boot from an image.")


def access_ips(values: dict[str, Any]) -> dict[str, Any]:
    """`values` (instance columns) with the access addresses made canonical."""
    return {key: canonical_ip(value) if key in ("access_ip_v4", "access_ip_v6") else value
            for key, value in values.items()}


def last_segment(ref: str) -> str:
    return ref.rstrip("/").rsplit("/", 1)[-1]


def generate_password(length: int = 12) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


@accepts(body=schemas.UPDATE)
async def update(req: ApiRequest) -> dict[str, Any]:
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:servers:update", instance.project_id)
    body = await req.json_object()
    validate(body, schemas.for_version(schemas.UPDATE, req))
    server = body["server"]
    names = {"name": "display_name", "description": "display_description",
             "accessIPv4": "access_ip_v4", "accessIPv6": "access_ip_v6",
             "hostname": "hostname"}
    values = access_ips({column: server[key] for key, column in names.items()
                         if key in server})
    if "pinned_availability_zone" in server:  # 2.104
        values.update(az_pinning.pin_changes(instance, server["pinned_availability_zone"]))
    instance = await req.app.compute.update(req.ctx, instance.uuid, values)
    faults = await req.app.compute.faults([instance])
    nets = await server_view.networking(req, [instance])
    view = server_view.detail(req, instance, faults.get(instance.uuid), nets.get(instance.uuid),
                              await server_view.groups_of(req, instance),
                              parts=server_view.update_parts(req))
    return {"server": view}


@accepts()
async def delete(req: ApiRequest) -> Reply:
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:servers:delete", instance.project_id)
    await req.app.compute.delete(req.ctx, instance.uuid)
    return Reply(None, 204)
