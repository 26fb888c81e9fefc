"""Server action changePassword: the guest's administrator password, set by its host."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import validate
from novalet.policy import enforce

CHANGE_PASSWORD: dict[str, Any] = {
    "type": "object", "properties": {"adminPass": {"type": "string"}},
    "required": ["adminPass"], "additionalProperties": False}


async def change_password(req: ApiRequest, value: Any) -> Reply:
    validate(value, CHANGE_PASSWORD)
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:os-admin-password", instance.project_id,
            {"user_id": instance.user_id})
    await req.app.compute.change_password(req.ctx, instance.uuid, value["adminPass"])
    return Reply(None, 202)


ACTIONS = {"changePassword": CHANGE_PASSWORD}
HANDLERS = {"changePassword": change_password}
