"""Server actions addFixedIp and removeFixedIp (nova-network multinic; 404 from 2.44)."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply, VersionNotFound
from novalet.api.validation import validate
from novalet.policy import enforce

REMOVED = "2.44"

ADD_FIXED_IP: dict[str, Any] = {
    "type": "object", "properties": {"networkId": {
        "type": ["string", "number"], "minLength": 1, "maxLength": 36}},
    "required": ["networkId"], "additionalProperties": False}
REMOVE_FIXED_IP: dict[str, Any] = {
    "type": "object", "properties": {"address": {"type": "string", "oneOf": [
        {"format": "ipv4"}, {"format": "ipv6"}]}},
    "required": ["address"], "additionalProperties": False}


def _not_removed(req: ApiRequest) -> None:
    """From 2.44 Nova answers both actions with 404, whatever the body."""
    if req.at_least(REMOVED):
        raise VersionNotFound()


async def _instance(req: ApiRequest, rule: str) -> Any:
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, f"os_compute_api:os-multinic:{rule}", instance.project_id)
    return instance


async def add_fixed_ip(req: ApiRequest, value: Any) -> Reply:
    _not_removed(req)
    validate(value, ADD_FIXED_IP)
    instance = await _instance(req, "add")
    await req.app.compute.add_fixed_ip(req.ctx, instance.uuid, str(value["networkId"]))
    return Reply(None, 202)


async def remove_fixed_ip(req: ApiRequest, value: Any) -> Reply:
    _not_removed(req)
    validate(value, REMOVE_FIXED_IP)
    instance = await _instance(req, "remove")
    await req.app.compute.remove_fixed_ip(req.ctx, instance.uuid, value["address"])
    return Reply(None, 202)


ACTIONS = {"addFixedIp": ADD_FIXED_IP, "removeFixedIp": REMOVE_FIXED_IP}
HANDLERS = {"addFixedIp": add_fixed_ip, "removeFixedIp": remove_fixed_ip}
