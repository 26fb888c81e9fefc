"""Handlers for /servers/{id}/ips (addresses come with the network service)."""

from __future__ import annotations

from typing import Any

from novalet import exceptions
from novalet.api.handler import ApiRequest
from novalet.policy import enforce


class NetworkNotFoundForInstance(exceptions.NotFound):
    msg_fmt = "Instance is not a member of specified network"


async def index(req: ApiRequest) -> dict[str, Any]:
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:ips:index", instance.project_id)
    return {"addresses": {}}


async def show(req: ApiRequest) -> dict[str, Any]:
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:ips:index", instance.project_id)
    raise NetworkNotFoundForInstance()
