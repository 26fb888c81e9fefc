"""How a server looks in API responses, at each microversion."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from novalet.api.handler import ApiRequest
from novalet.common.timeutils import isotime, isotime_micro
from novalet.compute.states import status_of
from novalet.db.models import Instance, InstanceFault
from novalet.network.api import ServerNetworking

_PROGRESS_STATUSES = {"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"}
# Glance's own image attributes that ride along with the properties in system
# metadata; 2.98's image `properties` are the image's properties only.
_IMAGE_ATTRIBUTES = {"min_ram", "min_disk", "disk_format", "container_format"}


@dataclass(frozen=True)
class Parts:
    """Which optional parts a server body carries. Show and list carry all; Nova's
    update and rebuild answers below 2.75 leave out the extended attributes
    (OS-EXT-*, OS-SRV-USG, config_drive, security_groups, volumes_attached, the
    addresses' type and MAC, host_status), and key_name outside show until 2.54
    (rebuild) or 2.75 (update). Rebuild puts `user_data` at the top level from 2.57
    instead of OS-EXT-SRV-ATTR:user_data."""

    extended: bool = True
    key_name: bool = True
    admin_user_data: bool = True


FULL = Parts()


def update_parts(req: ApiRequest) -> Parts:
    """What PUT /servers/{id} answers with at the request's microversion."""
    full = req.at_least("2.75")
    return Parts(extended=full, key_name=full)


def rebuild_parts(req: ApiRequest) -> Parts:
    """What the rebuild action answers with at the request's microversion."""
    return Parts(extended=req.at_least("2.75"), key_name=req.at_least("2.54"),
                 admin_user_data=False)


def links(req: ApiRequest, collection: str, item_id: str) -> list[dict[str, str]]:
    base = req.app.conf.public_url + "/compute"
    return [{"rel": "self", "href": f"{base}/v2.1/{collection}/{item_id}"},
            {"rel": "bookmark", "href": f"{base}/{collection}/{item_id}"}]


def host_id(instance: Instance) -> str:
    """Nova's opaque per-project host id."""
    if not instance.host:
        return ""
    return hashlib.sha224((instance.project_id + instance.host).encode()).hexdigest()


async def networking(req: ApiRequest, instances: list[Instance]) -> dict[str, ServerNetworking]:
    """Addresses and security groups of the servers, read at once (two queries)."""
    result: dict[str, ServerNetworking] = await req.app.network.server_networking(
        req.ctx, [i.uuid for i in instances])
    return result


def addresses(net: ServerNetworking | None, extended: bool = True
              ) -> dict[str, list[dict[str, Any]]]:
    """{label: [{"version", "addr", ...}]}: a network's fixed addresses, then its
    floating ones. extended adds OS-EXT-IPS:type and OS-EXT-IPS-MAC:mac_addr (server
    bodies have them; /servers/{id}/ips does not)."""
    result: dict[str, list[dict[str, Any]]] = {}
    if net is None:
        return result
    floating: dict[str, list[dict[str, Any]]] = {}
    for row in net.addresses:
        entry: dict[str, Any] = {"version": 6 if ":" in row.address else 4,
                                 "addr": row.address}
        if extended:
            entry["OS-EXT-IPS:type"] = row.kind
            entry["OS-EXT-IPS-MAC:mac_addr"] = row.mac
        result.setdefault(row.label, [])
        (floating.setdefault(row.label, []) if row.kind == "floating"
         else result[row.label]).append(entry)
    for label, entries in floating.items():
        result[label].extend(entries)
    return result


async def groups_of(req: ApiRequest, instance: Instance) -> list[str]:
    """The uuids of the server groups the server is in (at most one)."""
    groups: dict[str, list[str]] = await req.app.server_groups.groups_of([instance.uuid])
    return groups.get(instance.uuid, [])


def brief(req: ApiRequest, instance: Instance) -> dict[str, Any]:
    return {"id": instance.uuid, "name": instance.display_name,
            "links": links(req, "servers", instance.uuid)}


def detail(req: ApiRequest, instance: Instance, fault: InstanceFault | None = None,
           net: ServerNetworking | None = None,
           server_groups: list[str] | None = None, parts: Parts = FULL) -> dict[str, Any]:
    """The full server body; `net` (from networking()) fills addresses and
    security_groups, the latter only when the server is in a group, as Nova shows it.
    `server_groups` (from groups_of()) is shown from 2.71 where Nova shows it: in
    show, update and rebuild, not in lists. `parts` says which optional parts
    the answer carries (update and rebuild carry fewer below 2.75)."""
    status = status_of(instance.vm_state, instance.task_state)
    body: dict[str, Any] = {
        **brief(req, instance),
        "status": status, "tenant_id": instance.project_id, "user_id": instance.user_id,
        "metadata": {m.key: m.value for m in instance.metadata_items},
        "hostId": host_id(instance), "image": _image(req, instance),
        "flavor": _flavor(req, instance), "created": isotime(instance.created_at),
        "updated": isotime(instance.updated_at or instance.created_at),
        "addresses": addresses(net, extended=parts.extended),
        "accessIPv4": instance.access_ip_v4 or "",
        "accessIPv6": instance.access_ip_v6 or "", "OS-DCF:diskConfig": "MANUAL",
    }
    if parts.extended:
        _add_extended(instance, body, net)
    if parts.key_name:
        body["key_name"] = instance.key_name
    if status in _PROGRESS_STATUSES:
        body["progress"] = instance.progress
    if parts.extended:
        _add_admin_attrs(req, instance, body, parts.admin_user_data)
    _add_versioned(req, instance, body, parts)
    if req.at_least("2.71") and server_groups is not None:
        body["server_groups"] = server_groups
    if fault is not None:
        body["fault"] = _fault(req, fault)
    return body


def _add_extended(instance: Instance, body: dict[str, Any],
                  net: ServerNetworking | None) -> None:
    """The attributes v2.1 kept from v2.0's extensions."""
    body.update({
        "OS-EXT-AZ:availability_zone": instance.availability_zone or "",
        "config_drive": "True" if instance.config_drive else "",
        "OS-SRV-USG:launched_at": isotime_micro(instance.launched_at),
        "OS-SRV-USG:terminated_at": isotime_micro(instance.terminated_at),
        "OS-EXT-STS:task_state": instance.task_state,
        "OS-EXT-STS:vm_state": instance.vm_state,
        "OS-EXT-STS:power_state": instance.power_state,
        "os-extended-volumes:volumes_attached": [],
    })
    if net is not None and net.security_groups:
        body["security_groups"] = [{"name": name} for name in net.security_groups]


def _image(req: ApiRequest, instance: Instance) -> Any:
    if not instance.image_ref:
        return ""
    image: dict[str, Any] = {"id": instance.image_ref,
                             "links": [links(req, "images", instance.image_ref)[1]]}
    if req.at_least("2.98"):
        image["properties"] = image_properties(
            instance.system_metadata.get("image_properties", {}))
    return image


def image_properties(stored: dict[str, Any]) -> dict[str, str]:
    """The image's properties as 2.98 shows them: strings of at most 255 characters
    (Nova keeps them as such in system metadata), without Glance's own attributes
    (min_ram, min_disk, disk_format, container_format) or unset values."""
    return {key: str(value)[:255] for key, value in stored.items()
            if key not in _IMAGE_ATTRIBUTES and value is not None}


def _flavor(req: ApiRequest, instance: Instance) -> dict[str, Any]:
    flavor = instance.flavor
    if not req.at_least("2.47"):
        return {"id": flavor["flavorid"], "links": [links(req, "flavors",
                                                          flavor["flavorid"])[1]]}
    return {"vcpus": flavor["vcpus"], "ram": flavor["memory_mb"], "disk": flavor["root_gb"],
            "ephemeral": flavor["ephemeral_gb"], "swap": flavor["swap"],
            "original_name": flavor["name"], "extra_specs": flavor.get("extra_specs", {})}


def _add_admin_attrs(req: ApiRequest, instance: Instance, body: dict[str, Any],
                     user_data: bool = True) -> None:
    admin = req.allowed("os_compute_api:os-extended-server-attributes")
    if admin:
        body.update({"OS-EXT-SRV-ATTR:host": instance.host,
                     "OS-EXT-SRV-ATTR:instance_name": f"instance-{instance.id:08x}",
                     "OS-EXT-SRV-ATTR:hypervisor_hostname": instance.node})
    if req.at_least("2.3") and admin:
        body.update({"OS-EXT-SRV-ATTR:reservation_id": instance.reservation_id,
                     "OS-EXT-SRV-ATTR:launch_index": instance.launch_index,
                     "OS-EXT-SRV-ATTR:kernel_id": "", "OS-EXT-SRV-ATTR:ramdisk_id": "",
                     "OS-EXT-SRV-ATTR:root_device_name": None})
        if user_data:
            body["OS-EXT-SRV-ATTR:user_data"] = instance.user_data
    if req.at_least("2.3") and admin:
        body["OS-EXT-SRV-ATTR:hostname"] = instance.hostname


def _add_versioned(req: ApiRequest, instance: Instance, body: dict[str, Any],
                   parts: Parts) -> None:
    if req.at_least("2.9"):
        body["locked"] = instance.locked
    if req.at_least("2.16") and parts.extended \
            and req.allowed("os_compute_api:servers:show:host_status"):
        body["host_status"] = "UP" if instance.host else ""
    if req.at_least("2.19"):
        body["description"] = instance.display_description
    if req.at_least("2.26"):
        body["tags"] = [t.tag for t in instance.tags]
    if req.at_least("2.63"):
        body["trusted_image_certificates"] = None
    if req.at_least("2.73"):
        body["locked_reason"] = instance.locked_reason
    if req.at_least("2.90"):
        # Everyone's from 2.90, in every answer (admins' came with the extended ones).
        body.setdefault("OS-EXT-SRV-ATTR:hostname", instance.hostname)
    if req.at_least("2.96"):
        body["pinned_availability_zone"] = instance.requested_availability_zone
    if req.at_least("2.100"):
        body["scheduler_hints"] = instance.scheduler_hints or {}


def _fault(req: ApiRequest, fault: InstanceFault) -> dict[str, Any]:
    body: dict[str, Any] = {"code": fault.code, "created": isotime(fault.created_at),
                            "message": fault.message}
    if req.ctx.is_admin or fault.code != 500:
        body["details"] = fault.details
    return body
