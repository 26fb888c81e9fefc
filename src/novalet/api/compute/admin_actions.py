"""Server action os-resetState (admin): set vm_state active or error, clear the task."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import validate
from novalet.compute.server_ops import RESET_STATES
from novalet.policy import enforce

RESET_STATE: dict[str, Any] = {
    "type": "object", "properties": {"state": {"type": "string", "enum": list(RESET_STATES)}},
    "required": ["state"], "additionalProperties": False}


async def reset_state(req: ApiRequest, value: Any) -> Reply:
    validate(value, RESET_STATE)
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:os-admin-actions:reset_state", instance.project_id)
    await req.app.compute.reset_state(req.ctx, instance.uuid, value["state"])
    return Reply(None, 202)


ACTIONS = {"os-resetState": RESET_STATE}
HANDLERS = {"os-resetState": reset_state}
