"""The shelve, shelveOffload and unshelve server actions (Nova's os-shelve)."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import NAME, Spec, validate
from novalet.compute import shelving
from novalet.policy import enforce

_ANY: dict[str, Any] = {}  # Nova takes any value (null is what clients send)
_UNSHELVE_277 = {"type": ["object", "null"], "properties": {"availability_zone": NAME},
                 "required": ["availability_zone"], "additionalProperties": False}
_UNSHELVE_291 = {"type": ["object", "null"], "properties": {
    "availability_zone": {"type": ["string", "null"]}, "host": {"type": "string"}},
    "additionalProperties": False}

# action key -> what it takes, for server_actions' table
ACTIONS: dict[str, Spec] = {
    "shelve": _ANY, "shelveOffload": _ANY,
    "unshelve": [("2.1", _ANY), ("2.77", _UNSHELVE_277), ("2.91", _UNSHELVE_291)],
}


async def _instance(req: ApiRequest, policy: str) -> Any:
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, policy, instance.project_id)
    return instance


async def shelve(req: ApiRequest, value: Any) -> Reply:
    instance = await _instance(req, "os_compute_api:os-shelve:shelve")
    await shelving.shelve(req.app.compute, req.ctx, instance.uuid)
    return Reply(None, 202)


async def shelve_offload(req: ApiRequest, value: Any) -> Reply:
    instance = await _instance(req, "os_compute_api:os-shelve:shelve_offload")
    await shelving.shelve_offload(req.app.compute, req.ctx, instance.uuid)
    return Reply(None, 202)


async def unshelve(req: ApiRequest, value: Any) -> Reply:
    if req.at_least("2.91"):
        validate(value, _UNSHELVE_291)
    elif req.at_least("2.77"):
        validate(value, _UNSHELVE_277)
    instance = await _instance(req, "os_compute_api:os-shelve:unshelve")
    zone: Any = shelving.ZONE_UNCHANGED
    host = None
    if isinstance(value, dict) and req.at_least("2.77"):
        if "availability_zone" in value:
            zone = value["availability_zone"]
        if req.at_least("2.91"):
            host = value.get("host")
    await shelving.unshelve(req.app.compute, req.ctx, instance.uuid, zone, host)
    return Reply(None, 202)


ACTION_HANDLERS = {"shelve": shelve, "shelveOffload": shelve_offload, "unshelve": unshelve}
