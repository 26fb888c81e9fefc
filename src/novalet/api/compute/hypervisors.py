"""Handlers for /os-hypervisors (admin): list, detail, show, uptime, statistics, search
and servers, across the 2.28 (cpu_info object), 2.33 (paging), 2.53 (uuid ids, query
filters) and 2.88 (no resource figures, uptime in show) microversions."""

from __future__ import annotations

import json
import re
import uuid as uuidlib
from typing import Any
from urllib.parse import urlencode

from novalet import exceptions
from novalet.api.compute.schemas import hypervisors as schemas
from novalet.api.handler import ApiRequest, VersionNotFound
from novalet.api.validation import ValidationError, accepts, query_int, to_bool
from novalet.compute.hypervisors import Hypervisor, HypervisorAPI, HypervisorNotFound
from novalet.db.compute_nodes import parsed_cpu_info
from novalet.db.limits import INT_MAX
from novalet.policy import enforce

CPU_INFO_OBJECT = "2.28"  # cpu_info is an object, not a JSON string
PAGING = "2.33"  # limit and marker
UUID_IDS = "2.53"  # uuid ids, hypervisor_hostname_pattern and with_servers; search gone
NO_FIGURES = "2.88"  # resource figures, uptime and statistics gone; uptime in show

# The figures 2.88 drops (placement has them).
_FIGURES = ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used",
            "local_gb_used", "free_ram_mb", "free_disk_gb", "current_workload",
            "running_vms", "disk_available_least")


def _api(req: ApiRequest) -> HypervisorAPI:
    return HypervisorAPI(req.app.db, req.app.bus, req.app.conf)


def _brief(req: ApiRequest, hv: Hypervisor) -> dict[str, Any]:
    return {"id": hv.node.uuid if req.at_least(UUID_IDS) else hv.node.id,
            "hypervisor_hostname": hv.node.hypervisor_hostname,
            "state": "up" if hv.up else "down",
            "status": "enabled" if hv.enabled else "disabled"}


def _detail(req: ApiRequest, hv: Hypervisor) -> dict[str, Any]:
    body = _brief(req, hv)
    cpu_info = parsed_cpu_info(hv.node)
    body.update({
        "hypervisor_type": hv.node.hypervisor_type,
        "hypervisor_version": hv.node.hypervisor_version,
        "host_ip": hv.node.host_ip,
        "cpu_info": cpu_info if req.at_least(CPU_INFO_OBJECT) else json.dumps(cpu_info),
        "service": {"host": hv.service.host,
                    "id": hv.service.uuid if req.at_least(UUID_IDS) else hv.service.id,
                    "disabled_reason": hv.service.disabled_reason}})
    if not req.at_least(NO_FIGURES):
        body.update({name: getattr(hv, name) for name in _FIGURES})
    return body


def _servers(hv: Hypervisor) -> list[dict[str, str]]:
    # Nova's instance name: instance-%08x of the integer id.
    return [{"name": f"instance-{i.id:08x}", "uuid": i.uuid} for i in hv.instances]


@accepts(query=schemas.index_query)
async def index(req: ApiRequest) -> dict[str, Any]:
    """GET /os-hypervisors."""
    enforce(req.ctx, "os_compute_api:os-hypervisors:list")
    return await _list(req, _brief, "/os-hypervisors")


@accepts(query=schemas.index_query)
async def detail(req: ApiRequest) -> dict[str, Any]:
    """GET /os-hypervisors/detail."""
    enforce(req.ctx, "os_compute_api:os-hypervisors:list-detail")
    return await _list(req, _detail, "/os-hypervisors/detail")


async def _list(req: ApiRequest, view: Any, path: str) -> dict[str, Any]:
    params = dict(req.query)
    limit = marker = pattern = None
    with_servers = False
    if req.at_least(PAGING):
        max_limit = req.app.conf.get("api", "max_limit")
        asked = query_int(params.get("limit"), "limit")
        limit = max_limit if asked is None else min(asked, max_limit)
        if "marker" in params:
            marker = _marker(req, params["marker"])
    if req.at_least(UUID_IDS):
        pattern = params.get("hypervisor_hostname_pattern")
        with_servers = to_bool(params.get("with_servers", False))
        if pattern is not None and ("limit" in params or "marker" in params):
            raise ValidationError(reason="Paging over hypervisors with the "
                                  "hypervisor_hostname_pattern query parameter is not "
                                  "supported.")
    api = _api(req)
    if pattern is not None:
        found = await api.search(pattern)
        limit = None
    else:
        found = await api.list_hypervisors(marker=marker, limit=limit)
    items = []
    for hv in found:
        item = view(req, hv)
        if with_servers and hv.instances:
            item["servers"] = _servers(hv)
        items.append(item)
    body: dict[str, Any] = {"hypervisors": items}
    if limit and len(found) == limit:
        last = found[-1].node
        query = sorted((k, v) for k, v in req.query.items() if k != "marker")
        query.append(("marker", str(last.uuid if req.at_least(UUID_IDS) else last.id)))
        body["hypervisors_links"] = [{
            "rel": "next",
            "href": f"{req.app.conf.public_url}/compute/v2.1{path}?{urlencode(query)}"}]
    return body


def _marker(req: ApiRequest, raw: str) -> int | str:
    if req.at_least(UUID_IDS):
        return _uuid(raw)
    if not re.fullmatch(r"[0-9]+", raw) or int(raw) > INT_MAX:
        raise ValidationError(reason=f"marker [{raw}] not found")
    return int(raw)


@accepts(query=schemas.show_query)
async def show(req: ApiRequest) -> dict[str, Any]:
    """GET /os-hypervisors/{id}; from 2.88 with the host's uptime."""
    enforce(req.ctx, "os_compute_api:os-hypervisors:show")
    params = dict(req.query)
    api = _api(req)
    hv = await api.get(_id(req, req.path["hypervisor_id"]))
    body = _detail(req, hv)
    if req.at_least(UUID_IDS) and to_bool(params.get("with_servers", False)) \
            and hv.instances:
        body["servers"] = _servers(hv)
    if req.at_least(NO_FIGURES):
        body["uptime"] = await _uptime_or_none(req, api, hv)
    return {"hypervisor": body}


async def _uptime_or_none(req: ApiRequest, api: HypervisorAPI, hv: Hypervisor) -> str | None:
    """Show doesn't fail for a host that can't answer: its uptime is null."""
    if not hv.up:
        return None
    try:
        return await api.uptime(req.ctx, hv)
    except exceptions.NovaletError:  # e.g. MessagingTimeout
        return None


@accepts()
async def uptime(req: ApiRequest) -> dict[str, Any]:
    """GET /os-hypervisors/{id}/uptime (gone in 2.88)."""
    if req.at_least(NO_FIGURES):
        raise HypervisorNotFound(id=req.path["hypervisor_id"])
    enforce(req.ctx, "os_compute_api:os-hypervisors:uptime")
    api = _api(req)
    hv = await api.get(_id(req, req.path["hypervisor_id"]))
    body = _brief(req, hv)
    body["uptime"] = await api.uptime(req.ctx, hv)
    return {"hypervisor": body}


@accepts()
async def statistics(req: ApiRequest) -> dict[str, Any]:
    """GET /os-hypervisors/statistics (gone in 2.88)."""
    if req.at_least(NO_FIGURES):
        raise HypervisorNotFound(id="statistics")
    enforce(req.ctx, "os_compute_api:os-hypervisors:statistics")
    return {"hypervisor_statistics": await _api(req).statistics()}


@accepts()
async def search(req: ApiRequest) -> dict[str, Any]:
    """GET /os-hypervisors/{pattern}/search (below 2.53)."""
    _before_uuid_ids(req)
    enforce(req.ctx, "os_compute_api:os-hypervisors:search")
    found = await _api(req).search(req.path["hypervisor_hostname_pattern"])
    return {"hypervisors": [_brief(req, hv) for hv in found]}


@accepts()
async def servers(req: ApiRequest) -> dict[str, Any]:
    """GET /os-hypervisors/{pattern}/servers (below 2.53): matching hypervisors with
    their servers (a hypervisor without any has no `servers` key, as in Nova)."""
    _before_uuid_ids(req)
    enforce(req.ctx, "os_compute_api:os-hypervisors:servers")
    found = await _api(req).search(req.path["hypervisor_hostname_pattern"])
    items = []
    for hv in found:
        item = _brief(req, hv)
        if hv.instances:
            item["servers"] = _servers(hv)
        items.append(item)
    return {"hypervisors": items}


def _before_uuid_ids(req: ApiRequest) -> None:
    if req.at_least(UUID_IDS):
        raise VersionNotFound()  # a 404, as Nova's removed routes give


def _id(req: ApiRequest, raw: str) -> int | str:
    """A path id: an integer below 2.53 (anything else is not found), a uuid from 2.53
    (anything else is a 400, as in Nova)."""
    if req.at_least(UUID_IDS):
        return _uuid(raw)
    if not re.fullmatch(r"[0-9]+", raw) or not 0 < int(raw) <= INT_MAX:
        raise HypervisorNotFound(id=raw)
    return int(raw)


def _uuid(raw: str) -> str:
    try:
        return str(uuidlib.UUID(raw))
    except ValueError:
        raise ValidationError(reason=f"Invalid uuid {raw}") from None
