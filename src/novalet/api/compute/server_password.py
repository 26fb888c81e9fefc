"""/servers/{id}/os-server-password: what the guest posted to the metadata service
(encrypted with its key pair), read and cleared."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import accepts
from novalet.policy import enforce


@accepts()
async def index(req: ApiRequest) -> dict[str, Any]:
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:os-server-password:show", instance.project_id)
    return {"password": await req.app.compute.server_password(req.ctx, instance.uuid)}


@accepts()
async def clear(req: ApiRequest) -> Reply:
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:os-server-password:clear", instance.project_id)
    await req.app.compute.clear_server_password(req.ctx, instance.uuid)
    return Reply(None, 204)
