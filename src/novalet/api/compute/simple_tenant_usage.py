"""Handlers for /os-simple-tenant-usage: every project's usage over a period (admin),
or one project's (its own readers too); paged over instances from 2.40."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from novalet import exceptions
from novalet.api.compute.schemas import simple_tenant_usage as schemas
from novalet.api.handler import ApiRequest
from novalet.api.validation import ValidationError, accepts, query_int, to_bool
from novalet.common.timeutils import utcnow
from novalet.compute.usage import ServerUsage, TenantUsage, usage_report
from novalet.policy import enforce

PAGING = "2.40"
_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f",
            "%Y-%m-%d %H:%M:%S")


def _parse_time(raw: str | None) -> dt.datetime:
    """Nova's accepted formats (naive, UTC); now when absent."""
    if not raw:
        return utcnow()
    for fmt in _FORMATS:
        try:
            return dt.datetime.strptime(raw, fmt)
        except ValueError:
            continue
    raise ValidationError(reason=f"Invalid datetime string: {raw}. Datetime is in invalid "
                          "format; use YYYY-MM-DDTHH:MM:SS[.ffffff].")


def _period(params: dict[str, str]) -> tuple[dt.datetime, dt.datetime, bool]:
    start = _parse_time(params.get("start"))
    end = _parse_time(params.get("end"))
    if not start < end:
        raise ValidationError(reason="Invalid start time. The start time cannot occur "
                              "after the end time.")
    # Nova's own check is == "1"; openstacksdk sends detailed=True, which Nova ignores
    # (so `openstack usage list` shows no server counts there): take both.
    return start, end, to_bool(params.get("detailed", "0"))


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _server(usage: ServerUsage) -> dict[str, Any]:
    inst = usage.instance
    return {"instance_id": inst.uuid, "name": inst.display_name, "tenant_id": inst.project_id,
            "hours": usage.hours, "memory_mb": usage.memory_mb, "local_gb": usage.local_gb,
            "vcpus": usage.vcpus, "flavor": usage.flavor.get("name"),
            "started_at": _iso(inst.launched_at), "ended_at": _iso(inst.terminated_at),
            "state": usage.state, "uptime": usage.uptime}


def _tenant(usage: TenantUsage, detailed: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tenant_id": usage.tenant_id, "start": _iso(usage.start), "stop": _iso(usage.stop),
        "total_hours": usage.total_hours, "total_vcpus_usage": usage.total_vcpus_usage,
        "total_memory_mb_usage": usage.total_memory_mb_usage,
        "total_local_gb_usage": usage.total_local_gb_usage}
    if detailed:
        body["server_usages"] = [_server(s) for s in usage.servers]
    return body


def _paging(req: ApiRequest, params: dict[str, str]) -> tuple[int | None, str | None]:
    if not req.at_least(PAGING):
        return None, None
    max_limit = req.app.conf.get("api", "max_limit")
    asked = query_int(params.get("limit"), "limit")
    return (max_limit if asked is None else min(asked, max_limit)), params.get("marker")


def _links(req: ApiRequest, path: str, limit: int | None, rows: list[Any]) -> list[Any]:
    if not limit or len(rows) < limit:
        return []
    query = sorted((k, v) for k, v in req.query.items() if k != "marker")
    query.append(("marker", rows[-1].uuid))
    return [{"rel": "next",
             "href": f"{req.app.conf.public_url}/compute/v2.1{path}?{urlencode(query)}"}]


@accepts(query=schemas.query)
async def index(req: ApiRequest) -> dict[str, Any]:
    """GET /os-simple-tenant-usage?start=&end=&detailed=1 (admin: every project)."""
    enforce(req.ctx, "os_compute_api:os-simple-tenant-usage:list")
    params = dict(req.query)
    start, end, detailed = _period(params)
    limit, marker = _paging(req, params)
    tenants, rows = await usage_report(req.app.db, start, end, now=utcnow(), limit=limit,
                                       marker=marker)
    body: dict[str, Any] = {"tenant_usages": [_tenant(t, detailed) for t in tenants]}
    links = _links(req, "/os-simple-tenant-usage", limit, rows)
    if links:
        body["tenant_usages_links"] = links
    return body


@accepts(query=schemas.query)
async def show(req: ApiRequest) -> dict[str, Any]:
    """GET /os-simple-tenant-usage/{tenant_id}: always detailed; {} for a project with
    no usage in the period."""
    tenant_id = req.path["tenant_id"]
    enforce(req.ctx, "os_compute_api:os-simple-tenant-usage:show", tenant_id)
    params = dict(req.query)
    start, end, _ = _period(params)
    limit, marker = _paging(req, params)
    tenants, rows = await usage_report(req.app.db, start, end, now=utcnow(),
                                       project_id=tenant_id, limit=limit, marker=marker)
    body: dict[str, Any] = {"tenant_usage": _tenant(tenants[0], True) if tenants else {}}
    links = _links(req, f"/os-simple-tenant-usage/{tenant_id}", limit, rows)
    if links:
        body["tenant_usage_links"] = links
    return body


@accepts()
async def show_without_id(req: ApiRequest) -> dict[str, Any]:
    """GET /os-simple-tenant-usage/ (an empty tenant id): 404 as in Nova, whose
    router matches no route there, instead of the list a slash redirect would give."""
    raise exceptions.NotFound("The resource could not be found.")
