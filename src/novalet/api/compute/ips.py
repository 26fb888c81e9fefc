"""Handlers for /servers/{id}/ips: a server's addresses by network label."""

from __future__ import annotations

from typing import Any

from novalet import exceptions
from novalet.api.compute import server_view
from novalet.api.handler import ApiRequest
from novalet.api.validation import accepts
from novalet.policy import enforce


class NetworkNotFoundForInstance(exceptions.NotFound):
    msg_fmt = "Instance is not a member of specified network"


async def _addresses(req: ApiRequest) -> dict[str, list[dict[str, Any]]]:
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:ips:index", instance.project_id)
    nets = await server_view.networking(req, [instance])
    return server_view.addresses(nets.get(instance.uuid), extended=False)


@accepts()
async def index(req: ApiRequest) -> dict[str, Any]:
    return {"addresses": await _addresses(req)}


@accepts()
async def show(req: ApiRequest) -> dict[str, Any]:
    addresses = await _addresses(req)
    label = req.path["network"]
    if label not in addresses:
        raise NetworkNotFoundForInstance()
    return {label: addresses[label]}
