"""Handlers for /v2.0/auto-allocated-topology/{project_id}: get-me-a-network's
topology (network/auto_topology.py makes it, checks scope and policy)."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.network.subnets import BadRequest

DRY_RUN = "dry-run"


async def show(req: ApiRequest) -> dict[str, Any]:
    """The project's topology, made on the first call; `fields=dry-run` only checks
    that one can be made (409 AutoAllocationFailure when not) and makes nothing."""
    project_id = str(req.path["project_id"])
    fields = [f for f in req.query.getlist("fields") if f]
    if DRY_RUN in fields:
        await req.app.auto_topology.check_requirements(req.ctx, project_id)
        return {"auto_allocated_topology": _body("dry-run=pass", project_id)}
    if fields:  # as Neutron: the topology has no attributes to pick from
        raise BadRequest(resource="auto_allocate", msg="Unrecognized field")
    topology = await req.app.auto_topology.get_topology(req.ctx, project_id)
    return {"auto_allocated_topology": _body(topology.network_id, project_id)}


async def delete(req: ApiRequest) -> Reply:
    await req.app.auto_topology.delete_topology(req.ctx, str(req.path["project_id"]))
    return Reply(None, 204)


def _body(topology_id: str, project_id: str) -> dict[str, Any]:
    return {"id": topology_id, "tenant_id": project_id, "project_id": project_id}
