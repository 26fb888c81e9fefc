"""Groups and their members: /v3/groups[/{group_id}[/users[/{user_id}]]], /v3/users/{u}/groups."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.api.identity import access, views
from novalet.api.validation import validate

_FIELDS: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"\S"},
    "description": {"type": ["string", "null"], "maxLength": 65535},
}
CREATE: dict[str, Any] = {"type": "object", "required": ["group"], "properties": {
    "group": {"type": "object", "required": ["name"], "additionalProperties": False,
              "properties": {**_FIELDS, "domain_id": {"type": "string"}}}}}
UPDATE: dict[str, Any] = {"type": "object", "required": ["group"], "properties": {
    "group": {"type": "object", "additionalProperties": False, "properties": _FIELDS}}}


async def index(req: ApiRequest) -> dict[str, Any]:
    """GET /v3/groups, filtered by ?name= and ?domain_id=."""
    access.require_admin(req)
    found = await req.app.identity.list_groups(name=req.query.get("name"),
                                               domain_id=req.query.get("domain_id"))
    return views.collection(req, "groups", [views.group(req, g) for g in found])


async def create(req: ApiRequest) -> Reply:
    access.require_admin(req)
    body = await req.json_object()
    validate(body, CREATE)
    group = await req.app.identity.create_group(body["group"])
    return Reply({"group": views.group(req, group)}, 201)


async def show(req: ApiRequest) -> dict[str, Any]:
    access.require_admin(req)
    return {"group": views.group(req, await req.app.identity.get_group(
        req.path["group_id"]))}


async def update(req: ApiRequest) -> dict[str, Any]:
    access.require_admin(req)
    body = await req.json_object()
    validate(body, UPDATE)
    group = await req.app.identity.update_group(req.path["group_id"], body["group"])
    return {"group": views.group(req, group)}


async def delete(req: ApiRequest) -> Reply:
    access.require_admin(req)
    await req.app.identity.delete_group(req.path["group_id"])
    return Reply(None, 204)


async def members(req: ApiRequest) -> dict[str, Any]:
    """GET /v3/groups/{group_id}/users."""
    access.require_admin(req)
    found = await req.app.identity.members_of(req.path["group_id"])
    return views.collection(req, "users", [views.user(req, u) for u in found])


async def add_member(req: ApiRequest) -> Reply:
    """PUT /v3/groups/{group_id}/users/{user_id} (idempotent)."""
    access.require_admin(req)
    await req.app.identity.add_member(req.path["group_id"], req.path["user_id"])
    return Reply(None, 204)


async def check_member(req: ApiRequest) -> Reply:
    """HEAD (and GET): 204 when the user is in the group, else 404."""
    access.require_admin(req)
    await req.app.identity.check_member(req.path["group_id"], req.path["user_id"])
    return Reply(None, 204)


async def remove_member(req: ApiRequest) -> Reply:
    access.require_admin(req)
    await req.app.identity.remove_member(req.path["group_id"], req.path["user_id"])
    return Reply(None, 204)


async def of_user(req: ApiRequest) -> dict[str, Any]:
    """GET /v3/users/{user_id}/groups: admins, and every user for themselves."""
    access.require_self_or_admin(req, req.path["user_id"])
    found = await req.app.identity.groups_of(req.path["user_id"])
    return views.collection(req, "groups", [views.group(req, g) for g in found])
