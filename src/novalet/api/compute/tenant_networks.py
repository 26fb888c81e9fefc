"""Handlers for /os-tenant-networks: the networks a project may boot on, in Nova's
short shape (a proxy API: 404 from 2.36). Read only: networks are made through
os-networks or the network API."""

from __future__ import annotations

from typing import Any

from novalet.api.compute.proxy import require_proxy_version
from novalet.api.handler import ApiRequest
from novalet.api.validation import accepts
from novalet.db.models import Network
from novalet.policy import enforce


def view(network: Network) -> dict[str, Any]:
    return {"id": network.uuid, "label": network.label, "cidr": network.cidr}


@accepts()
async def index(req: ApiRequest) -> dict[str, Any]:
    require_proxy_version(req)
    enforce(req.ctx, "os_compute_api:os-tenant-networks:list")
    networks = await req.app.network.list_networks(req.ctx)
    return {"networks": [view(n) for n in networks]}


@accepts()
async def show(req: ApiRequest) -> dict[str, Any]:
    require_proxy_version(req)
    enforce(req.ctx, "os_compute_api:os-tenant-networks:show")
    network = await req.app.network.get_network(req.ctx, req.path["network_id"])
    return {"network": view(network)}
