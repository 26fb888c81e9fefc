"""Handlers for /os-hosts (admin; deprecated: 404 from 2.43, use os-hypervisors and
os-services): list, show a host's resources, enable or disable it; maintenance
mode and the power actions are not supported by any Novalet driver (501)."""

from __future__ import annotations

import dataclasses
from typing import Any, NoReturn

from novalet.api.compute.schemas import hosts as schemas
from novalet.api.handler import ApiRequest, VersionNotFound
from novalet.api.validation import accepts, validate
from novalet.compute.hosts import HostAPI
from novalet.policy import enforce

REMOVED = "2.43"


def _api(req: ApiRequest) -> HostAPI:
    # Holds only the database, bus and configuration: cheap to make per request.
    return HostAPI(req.app.db, req.app.bus, req.app.conf)


def _check_version(req: ApiRequest) -> None:
    if req.at_least(REMOVED):
        raise VersionNotFound()


@accepts(query=schemas.INDEX_QUERY)
async def index(req: ApiRequest) -> dict[str, Any]:
    """GET /os-hosts?zone=: a blank zone lists every host."""
    _check_version(req)
    enforce(req.ctx, "os_compute_api:os-hosts:list")
    hosts = await _api(req).list_hosts(req.query.get("zone") or None)
    return {"hosts": [dataclasses.asdict(h) for h in hosts]}


@accepts()
async def show(req: ApiRequest) -> dict[str, Any]:
    _check_version(req)
    enforce(req.ctx, "os_compute_api:os-hosts:show")
    lines = await _api(req).resources(req.path["host_name"])
    return {"host": [{"resource": dataclasses.asdict(line)} for line in lines]}


@accepts(body=schemas.UPDATE)
async def update(req: ApiRequest) -> dict[str, Any]:
    """PUT /os-hosts/{host} {"status": "enable"|"disable", "maintenance_mode": ...}."""
    _check_version(req)
    body = await req.json_object()
    validate(body, schemas.UPDATE)
    enforce(req.ctx, "os_compute_api:os-hosts:update")
    host, api = req.path["host_name"], _api(req)
    if "maintenance_mode" in body:  # refused before the status changes
        await api.refuse(host, "maintenance_mode")
    enabled = body["status"].strip().lower() == "enable"
    return {"host": host, "status": await api.set_enabled(host, enabled)}


async def _power(req: ApiRequest, action: str, rule: str) -> NoReturn:
    _check_version(req)
    enforce(req.ctx, f"os_compute_api:os-hosts:{rule}")
    await _api(req).refuse(req.path["host_name"], action)


@accepts()
async def reboot(req: ApiRequest) -> NoReturn:
    await _power(req, "reboot", "reboot")


@accepts()
async def shutdown(req: ApiRequest) -> NoReturn:
    await _power(req, "shutdown", "shutdown")


@accepts()
async def startup(req: ApiRequest) -> NoReturn:
    await _power(req, "startup", "start")
