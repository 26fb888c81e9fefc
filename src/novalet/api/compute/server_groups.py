"""Handlers for /os-server-groups: list, create, show, delete."""

from __future__ import annotations

from typing import Any

from novalet.api.compute.schemas import server_groups as schemas
from novalet.api.handler import ApiRequest, Reply
from novalet.api.validation import accepts, query_int, validate
from novalet.compute.server_groups import GroupRequest, ServerGroup
from novalet.policy import authorize, enforce


def _view(req: ApiRequest, group: ServerGroup) -> dict[str, Any]:
    body: dict[str, Any] = {"id": group.uuid, "name": group.name,
                            "members": [m.instance_uuid for m in group.members]}
    if req.at_least("2.64"):
        body["policy"] = group.policy
        body["rules"] = dict(group.rules)
    else:
        body["policies"] = [group.policy]
        body["metadata"] = {}
    if req.at_least("2.13"):
        body["project_id"] = group.project_id
        body["user_id"] = group.user_id
    return body


@accepts(query=schemas.index_query)
async def index(req: ApiRequest) -> dict[str, Any]:
    params = dict(req.query)  # checked by @accepts
    enforce(req.ctx, "os_compute_api:os-server-groups:index")
    all_projects = "all_projects" in params and authorize(
        req.ctx, "os_compute_api:os-server-groups:index:all_projects")
    max_limit = req.app.conf.get("api", "max_limit")
    asked = query_int(params.get("limit"), "limit")
    limit = max_limit if asked is None else min(asked, max_limit)
    offset = query_int(params.get("offset"), "offset") or 0
    groups = await req.app.server_groups.list_groups(req.ctx, all_projects, limit, offset)
    return {"server_groups": [_view(req, g) for g in groups]}


@accepts(body=schemas.create)
async def create(req: ApiRequest) -> dict[str, Any]:
    enforce(req.ctx, "os_compute_api:os-server-groups:create", req.ctx.project_id)
    body = await req.json_object()
    validate(body, schemas.create(req.at_least))
    params = body["server_group"]
    if req.at_least("2.64"):
        policy = params["policy"]
        rules = {k: int(v) for k, v in params.get("rules", {}).items()}
    else:
        policy, rules = params["policies"][0], {}
    group = await req.app.server_groups.create(
        req.ctx, GroupRequest(name=params["name"], policy=policy, rules=rules))
    return {"server_group": _view(req, group)}


@accepts()
async def show(req: ApiRequest) -> dict[str, Any]:
    group = await req.app.server_groups.get(req.ctx, req.path["group_id"])
    enforce(req.ctx, "os_compute_api:os-server-groups:show", group.project_id)
    return {"server_group": _view(req, group)}


@accepts()
async def delete(req: ApiRequest) -> Reply:
    group = await req.app.server_groups.get(req.ctx, req.path["group_id"])
    enforce(req.ctx, "os_compute_api:os-server-groups:delete", group.project_id)
    await req.app.server_groups.delete(req.ctx, group.uuid)
    return Reply(None, 204)
