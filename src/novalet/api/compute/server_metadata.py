"""Handlers for /servers/{id}/metadata."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import METADATA, ValidationError, accepts, validate
from novalet.compute.api import MetadataKeyNotFound
from novalet.policy import enforce

_ALL = {"type": "object", "properties": {"metadata": METADATA}, "required": ["metadata"],
        "additionalProperties": False}
_ONE = {"type": "object", "properties": {"meta": {**METADATA, "minProperties": 1,
                                                  "maxProperties": 1}},
        "required": ["meta"], "additionalProperties": False}


async def _instance(req: ApiRequest, policy: str) -> Any:
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, policy, instance.project_id)
    return instance


@accepts()
async def index(req: ApiRequest) -> dict[str, Any]:
    instance = await _instance(req, "os_compute_api:server-metadata:index")
    return {"metadata": {m.key: m.value for m in instance.metadata_items}}


@accepts()
async def show(req: ApiRequest) -> dict[str, Any]:
    instance = await _instance(req, "os_compute_api:server-metadata:index")
    items = {m.key: m.value for m in instance.metadata_items}
    key = req.path["key"]
    if key not in items:
        raise MetadataKeyNotFound(key=key, uuid=instance.uuid)
    return {"meta": {key: items[key]}}


async def _set(req: ApiRequest, replace: bool) -> dict[str, Any]:
    instance = await _instance(req, "os_compute_api:server-metadata:update")
    body = await req.json_object()
    validate(body, _ALL)
    items = await req.app.compute.set_metadata(req.ctx, instance.uuid, body["metadata"],
                                               replace)
    return {"metadata": items}


@accepts(body=_ALL)
async def update_all(req: ApiRequest) -> dict[str, Any]:
    return await _set(req, replace=False)


@accepts(body=_ALL)
async def replace_all(req: ApiRequest) -> dict[str, Any]:
    return await _set(req, replace=True)


@accepts(body=_ONE)
async def update(req: ApiRequest) -> dict[str, Any]:
    instance = await _instance(req, "os_compute_api:server-metadata:update")
    body = await req.json_object()
    validate(body, _ONE)
    key = req.path["key"]
    if key not in body["meta"]:
        raise ValidationError(reason="Request body and URI mismatch")
    await req.app.compute.set_metadata(req.ctx, instance.uuid, body["meta"], False)
    return {"meta": body["meta"]}


@accepts()
async def delete(req: ApiRequest) -> Reply:
    instance = await _instance(req, "os_compute_api:server-metadata:update")
    await req.app.compute.delete_metadata(req.ctx, instance.uuid, req.path["key"])
    return Reply(None, 204)
