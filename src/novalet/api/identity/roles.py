"""Roles: /v3/roles and /v3/roles/{role_id}."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest, Reply
from novalet.api.identity import access, views
from novalet.api.validation import validate

CREATE: dict[str, Any] = {"type": "object", "required": ["role"], "properties": {
    "role": {"type": "object", "required": ["name"], "additionalProperties": False,
             "properties": {
                 "name": {"type": "string", "minLength": 1, "maxLength": 255,
                          "pattern": r"\S"},
                 "domain_id": {"type": "null"},
                 "options": {"type": "object", "maxProperties": 0}}}}}


async def index(req: ApiRequest) -> dict[str, Any]:
    """GET /v3/roles, filtered by ?name=."""
    access.require_admin(req)
    found = await req.app.identity.list_roles(name=req.query.get("name"))
    return views.collection(req, "roles", [views.role(req, r) for r in found])


async def create(req: ApiRequest) -> Reply:
    access.require_admin(req)
    body = await req.json_object()
    validate(body, CREATE)
    role = await req.app.identity.create_role(body["role"]["name"])
    return Reply({"role": views.role(req, role)}, 201)


async def show(req: ApiRequest) -> dict[str, Any]:
    access.require_admin(req)
    return {"role": views.role(req, await req.app.identity.get_role(req.path["role_id"]))}


async def delete(req: ApiRequest) -> Reply:
    access.require_admin(req)
    await req.app.identity.delete_role(req.path["role_id"])
    return Reply(None, 204)
