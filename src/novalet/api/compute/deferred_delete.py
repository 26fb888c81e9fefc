"""Server actions restore and forceDelete: the way back from, or past, a soft delete
(`[DEFAULT] reclaim_instance_interval`)."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.policy import enforce

# Nova takes any value for both keys (its schemas say `{}`).
_ANY: dict[str, Any] = {}


async def restore(req: ApiRequest, value: Any) -> Reply:
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:os-deferred-delete:restore", instance.project_id)
    await req.app.compute.restore(req.ctx, instance.uuid)
    return Reply(None, 202)


async def force_delete(req: ApiRequest, value: Any) -> Reply:
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:os-deferred-delete:force", instance.project_id,
            {"user_id": instance.user_id})
    await req.app.compute.force_delete(req.ctx, instance.uuid)
    return Reply(None, 202)


ACTIONS = {"restore": _ANY, "forceDelete": _ANY}
HANDLERS = {"restore": restore, "forceDelete": force_delete}
