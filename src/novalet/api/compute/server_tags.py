"""Handlers for /servers/{id}/tags (microversion 2.26 and later)."""

from __future__ import annotations

from typing import Any

from novalet.api.compute.schemas.servers import TAG
from novalet.api.handler import ApiRequest, Reply, require_version
from novalet.api.validation import accepts, validate
from novalet.compute.api import TagNotFound
from novalet.policy import enforce

TAGS = {"type": "object", "properties": {"tags": {"type": "array", "items": TAG}},
         "required": ["tags"], "additionalProperties": False}


async def _instance(req: ApiRequest, policy: str) -> Any:
    require_version(req, "2.26")
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, policy, instance.project_id)
    return instance


@accepts()
async def index(req: ApiRequest) -> dict[str, Any]:
    instance = await _instance(req, "os_compute_api:os-server-tags:index")
    return {"tags": [t.tag for t in instance.tags]}


@accepts()
async def show(req: ApiRequest) -> Reply:
    instance = await _instance(req, "os_compute_api:os-server-tags:index")
    if req.path["tag"] not in {t.tag for t in instance.tags}:
        raise TagNotFound(tag=req.path["tag"], uuid=instance.uuid)
    return Reply(None, 204)


@accepts(body=TAGS)
async def replace_all(req: ApiRequest) -> dict[str, Any]:
    instance = await _instance(req, "os_compute_api:os-server-tags:update")
    body = await req.json_object()
    validate(body, TAGS)
    return {"tags": await req.app.compute.set_tags(req.ctx, instance.uuid, body["tags"])}


@accepts()
async def add(req: ApiRequest) -> Reply:
    instance = await _instance(req, "os_compute_api:os-server-tags:update")
    tag = req.path["tag"]
    validate(tag, TAG)
    created = await req.app.compute.add_tag(req.ctx, instance.uuid, tag)
    location = (f"{req.app.conf.public_url}/compute/v2.1/servers/{instance.uuid}"
                f"/tags/{tag}")
    return Reply(None, 201 if created else 204, {"Location": location})


@accepts()
async def delete(req: ApiRequest) -> Reply:
    instance = await _instance(req, "os_compute_api:os-server-tags:update")
    await req.app.compute.delete_tag(req.ctx, instance.uuid, req.path["tag"])
    return Reply(None, 204)


@accepts()
async def delete_all(req: ApiRequest) -> Reply:
    instance = await _instance(req, "os_compute_api:os-server-tags:update")
    await req.app.compute.set_tags(req.ctx, instance.uuid, [])
    return Reply(None, 204)
